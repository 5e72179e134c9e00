"""A small stand-in for the pydantic models of the published client's API (this package
depends on nothing): keyword construction with defaults, required fields checked,
``model_dump()`` (``None`` fields left out, as on the wire) and equality."""

from __future__ import annotations

from typing import Any, ClassVar, Dict, Tuple


class Model:
    """Subclasses list ``_fields``: ``(name, default)``, with ``...`` for a required field."""

    _fields: ClassVar[Tuple[Tuple[str, Any], ...]] = ()

    def __init__(self, **values: Any) -> None:
        known = {name for name, _ in self._fields}
        unknown = set(values) - known
        if unknown:
            raise TypeError(f"{type(self).__name__}: unknown fields {sorted(unknown)}")
        for name, default in self._fields:
            if name in values:
                value = values[name]
            elif default is ...:
                raise TypeError(f"{type(self).__name__}: {name} is required")
            else:
                value = default() if callable(default) else default
            setattr(self, name, value)

    def model_dump(self, **_: Any) -> Dict[str, Any]:
        """The fields as a dict, ``None`` ones left out (nested models dumped too)."""
        dumped = {}
        for name, _default in self._fields:
            value = getattr(self, name)
            if value is not None:
                dumped[name] = value.model_dump() if isinstance(value, Model) else value
        return dumped

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.model_dump() == other.model_dump()  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.model_dump().items())
        return f"{type(self).__name__}({fields})"
