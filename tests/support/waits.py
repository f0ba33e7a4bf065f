"""Waiting helpers shared by the cancellation tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["until_cancelled"]


async def until_cancelled(started: Callable[[], object], cancelled: Callable[[], object]) -> None:
    """Call ``started()``, wait until cancelled, call ``cancelled()`` and let the cancellation
    go on (the body of a tool or hook that never finishes by itself)."""
    started()
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        cancelled()
        raise
