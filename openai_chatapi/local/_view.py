"""``View``: a read-only attribute that shows a value kept elsewhere.

``LocalModelServer`` shows the facts its supervisor keeps (``port``, ``log_path``, ...), and
``LocalServerExitedError`` the entries of its ``details`` (``returncode``, ``signal``, ...),
read each time, so a stop (or a scrub of ``details``) shows at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

__all__ = ["View"]

_T = TypeVar("_T")


class View(Generic[_T]):
    """A read-only attribute whose value is ``read(instance, name)``; ``name`` is the
    attribute's own name."""

    def __init__(self, read: Callable[[Any, str], _T], doc: str | None = None) -> None:
        self._read = read
        self._name = ""
        self.__doc__ = doc

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self._name = name

    @overload
    def __get__(self, instance: None, owner: type[Any]) -> View[_T]: ...
    @overload
    def __get__(self, instance: object, owner: type[Any]) -> _T: ...
    def __get__(self, instance: object, owner: type[Any]) -> View[_T] | _T:
        if instance is None:
            return self
        return self._read(instance, self._name)

    def __set__(self, instance: object, value: object) -> None:
        raise AttributeError(f"{self._name} is read-only")
