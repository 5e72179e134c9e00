"""The worker class users get from :func:`iii.register_worker`: the native worker plus the
parts of the published client's surface that are plain Python (observers, which this
package's engine does not offer; ``current_invocation``; async forms of connect and
shutdown)."""

from __future__ import annotations

from typing import Any, Optional

from . import _native
from ._invocation import InvocationContext, current_invocation
from .observe import ObserverHandle


class III(_native.III):
    """A worker connected to an engine. Create it with :func:`iii.register_worker`."""

    def current_invocation(self) -> Optional[InvocationContext]:
        """The call the running handler serves, or ``None`` outside a handler."""
        return current_invocation()

    def observe(self, source: Any, target: Any, options: Any = None) -> ObserverHandle:
        """Observers (``observe.v1``) need an engine that offers them; this package's engine
        does not, so the handle is in state ``error`` and ``ready()`` raises
        :class:`iii.ObserveRejection` with code ``OBSERVE_UNSUPPORTED``."""
        return ObserverHandle.rejected("OBSERVE_UNSUPPORTED", "this engine does not offer observers")

    @property
    def worker_id(self) -> Optional[str]:
        """The id the engine gave this worker (not reported to this package: ``None``)."""
        return None

    async def connect_async(self) -> None:
        """Waits until the worker is connected (it connects by itself; this only waits);
        raises :class:`iii.ConnectionError` if it cannot (see ``ready_async``)."""
        await self.ready_async()

    async def shutdown_async(self) -> None:
        """:meth:`shutdown`, for async code."""
        self.shutdown()
