"""``ModelList``: the answer of ``GET /models``, iterable as the models it lists."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, overload

from . import _generated as gen

__all__ = ["ModelList"]


class ModelList(gen.ModelList):
    """The models a server offers: ``for model in models``, ``len(models)``, ``models[0]``.

    ``.data`` is the same list. (Iterating yields the ``Model`` objects, not the
    ``(field, value)`` pairs pydantic models usually yield.)
    """

    def __iter__(self) -> Iterator[gen.Model]:  # type: ignore[override]
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    @overload
    def __getitem__(self, index: int) -> gen.Model: ...

    @overload
    def __getitem__(self, index: slice) -> list[gen.Model]: ...

    def __getitem__(self, index: Any) -> Any:
        return self.data[index]

    def __bool__(self) -> bool:
        return True
