"""The published client's ``iii.runtime``: the handles registrations return, and the names of
the connection states."""

from typing import Literal

from ._native import FunctionRef, TriggerTypeRef

__all__ = ["FunctionRef", "IIIConnectionState", "TriggerTypeRef"]

#: Where a worker's connection stands (:meth:`iii.III.get_connection_state`).
IIIConnectionState = Literal["disconnected", "connecting", "connected", "reconnecting", "failed"]
