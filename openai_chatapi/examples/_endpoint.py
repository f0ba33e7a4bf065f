"""Where the examples send their requests: the configured endpoint, or the local model."""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from openai_chatapi import ModelConfig
from openai_chatapi.local import LocalModelServer


@asynccontextmanager
async def endpoint(*, temperature: float = 0.2, max_tokens: int = 64) -> AsyncIterator[ModelConfig]:
    """A ready ``ModelConfig``: from the environment, else from a local model server."""
    base_url = os.environ.get("OPENAI_BASE_URL")
    if base_url:
        yield ModelConfig(
            api_base_url=base_url,
            model=os.environ.get("OPENAI_MODEL", "gpt-4o-mini"),
            temperature=temperature,
            max_tokens=max_tokens,
        )
        return
    print("[example] no OPENAI_BASE_URL set: starting the local model", file=sys.stderr)
    async with LocalModelServer() as config:
        yield dataclasses.replace(config, temperature=temperature, max_tokens=max_tokens)


@contextmanager
def endpoint_sync(*, temperature: float = 0.2, max_tokens: int = 64) -> Iterator[ModelConfig]:
    """``endpoint`` for sync code: the configured endpoint, else a local model server."""
    base_url = os.environ.get("OPENAI_BASE_URL")
    if base_url:
        yield ModelConfig(
            api_base_url=base_url,
            model=os.environ.get("OPENAI_MODEL", "gpt-4o-mini"),
            temperature=temperature,
            max_tokens=max_tokens,
        )
        return
    print("[example] no OPENAI_BASE_URL set: starting the local model", file=sys.stderr)
    with LocalModelServer() as config:
        yield dataclasses.replace(config, temperature=temperature, max_tokens=max_tokens)
