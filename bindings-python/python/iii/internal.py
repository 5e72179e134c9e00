"""The published client's ``iii.internal``."""

from .types import InternalHttpRequest

__all__ = ["InternalHttpRequest"]
