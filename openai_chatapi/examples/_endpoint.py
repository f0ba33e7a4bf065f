"""Where the examples send their requests: the configured endpoint, or the local model."""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from openai_chatapi import ModelConfig
from openai_chatapi.local import LocalModelServer


def _configured(temperature: float, max_tokens: int) -> ModelConfig | None:
    """The endpoint named by ``OPENAI_BASE_URL`` (and ``OPENAI_MODEL``), if one is set."""
    base_url = os.environ.get("OPENAI_BASE_URL")
    if not base_url:
        print("[example] no OPENAI_BASE_URL set: starting the local model", file=sys.stderr)
        return None
    model = os.environ.get("OPENAI_MODEL", "gpt-4o-mini")
    return ModelConfig(
        api_base_url=base_url, model=model, temperature=temperature, max_tokens=max_tokens
    )


@asynccontextmanager
async def endpoint(*, temperature: float = 0.2, max_tokens: int = 64) -> AsyncIterator[ModelConfig]:
    """A ready ``ModelConfig``: from the environment, else from a local model server."""
    config = _configured(temperature, max_tokens)
    if config is not None:
        yield config
        return
    async with LocalModelServer() as local:
        yield dataclasses.replace(local, temperature=temperature, max_tokens=max_tokens)


@contextmanager
def endpoint_sync(*, temperature: float = 0.2, max_tokens: int = 64) -> Iterator[ModelConfig]:
    """``endpoint`` for sync code: the configured endpoint, else a local model server."""
    config = _configured(temperature, max_tokens)
    if config is not None:
        yield config
        return
    with LocalModelServer() as local:
        yield dataclasses.replace(local, temperature=temperature, max_tokens=max_tokens)
