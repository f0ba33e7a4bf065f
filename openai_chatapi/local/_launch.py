"""Entry point of the embedded local model server's child process (see ``openai_chatapi.local``).

``LocalModelServer`` runs ``python -c <bootstrap> <this file> <module> <arguments...>``;
``main`` then, in the child:

1. starts a thread that ends the child as soon as its parent is gone (no orphan server);
2. enables ``faulthandler``, so a native crash leaves a traceback in the server's log;
3. decides whether llama.cpp may load the model into its *extra* buffer types (the AMX and
   weight-repacking kernels of ``libggml-cpu``) and, where not, makes every model load use
   ``llama_model_params.use_extra_bufts = False``;
4. runs ``<module>`` (``llama_cpp.server``) as ``__main__`` with the remaining arguments,
   preceded by ``--api_key=<key>`` when ``$OPENAI_CHATAPI_LOCAL_API_KEY`` is set. The parent
   passes the key that way because a process's command line is readable by every local user
   (``ps``, ``/proc/<pid>/cmdline``) while its environment is readable only by its owner;
   changing ``sys.argv`` here does not change the command line the system shows.

Why step 3: on CPUs that report Intel AMX (``amx_tile``/``amx_int8``/``amx_bf16`` in
``/proc/cpuinfo``), llama.cpp builds compiled for the native CPU crash with SIGSEGV in
``ggml_backend_amx_mul_mat`` on the first completion (upstream llama.cpp #20824). The wheel
may come from pip's cache, built whatever ``CMAKE_ARGS`` now says, so the model is loaded
without the extra buffer types instead. ``$OPENAI_CHATAPI_LOCAL_REPACK`` chooses:
``auto`` (default: off where the CPU reports AMX, on elsewhere), ``on`` or ``off``.

This file is run by path, not imported as part of the package, so it imports nothing from
``openai_chatapi`` (the package need not be importable in the child); ``_supervisor.py`` imports
it for the same decision in the parent.
"""

from __future__ import annotations

import faulthandler
import os
import runpy
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "API_KEY_ENV",
    "CPUINFO_PATH",
    "REPACK_CHOICES",
    "REPACK_ENV",
    "cpu_reports_amx",
    "disable_extra_buffer_types",
    "extra_buffer_types",
    "main",
]

REPACK_ENV = "OPENAI_CHATAPI_LOCAL_REPACK"
REPACK_CHOICES = ("auto", "on", "off")
CPUINFO_PATH = "/proc/cpuinfo"
PARENT_PID_ENV = "OPENAI_CHATAPI_PARENT_PID"
API_KEY_ENV = "OPENAI_CHATAPI_LOCAL_API_KEY"
LOG_PREFIX = "openai_chatapi:"
_WRAPPED = "_openai_chatapi_no_extra_bufts"
# The functions of llama_cpp.llama_cpp that produce or take a llama_model_params.
_LOADERS = (
    "llama_model_load_from_file",
    "llama_load_model_from_file",
    "llama_model_load_from_splits",
)


def cpu_reports_amx(cpuinfo: str | None = None) -> bool:
    """Whether the CPU flags (``/proc/cpuinfo`` unless ``cpuinfo`` is given) include AMX.

    False where the file cannot be read (not Linux): there is no such crash to avoid there.
    """
    if cpuinfo is None:
        try:
            with open(CPUINFO_PATH, encoding="utf-8", errors="replace") as handle:
                cpuinfo = handle.read()
        except OSError:
            return False
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features") and any(
            flag.startswith("amx") for flag in value.split()
        ):
            return True
    return False


def repack_choice(env: Mapping[str, str]) -> str:
    """``$OPENAI_CHATAPI_LOCAL_REPACK`` normalised: one of ``REPACK_CHOICES``, or the raw
    value when it is none of them (callers refuse it)."""
    return env.get(REPACK_ENV, "").strip().lower() or "auto"


def extra_buffer_types(
    env: Mapping[str, str] | None = None, cpuinfo: str | None = None
) -> tuple[bool, str]:
    """Whether the model may use llama.cpp's extra buffer types, and why (one phrase).

    ``env`` defaults to ``os.environ``; an unknown value of ``$OPENAI_CHATAPI_LOCAL_REPACK``
    counts as ``auto`` here (the parent refuses it before starting the child).
    """
    choice = repack_choice(os.environ if env is None else env)
    if choice == "on":
        return True, f"{REPACK_ENV}=on"
    if choice == "off":
        return False, f"{REPACK_ENV}=off"
    if cpu_reports_amx(cpuinfo):
        return False, "the CPU reports AMX (llama.cpp's AMX kernels crash)"
    return True, "the CPU does not report AMX"


def disable_extra_buffer_types(module: Any) -> list[str]:
    """Make every model load through ``module`` (``llama_cpp.llama_cpp``) use
    ``use_extra_bufts = False``; returns the names of the functions wrapped.

    ``llama_cpp.Llama`` calls these through the module's attributes, so wrapping them there
    reaches the ``llama_model_params`` llama.cpp receives. Applying it twice wraps nothing more.
    """
    wrapped: list[str] = []
    default_params = getattr(module, "llama_model_default_params", None)
    if callable(default_params) and not getattr(default_params, _WRAPPED, False):
        module.llama_model_default_params = _defaults_without_extra(default_params)
        wrapped.append("llama_model_default_params")
    for name in _LOADERS:
        function = getattr(module, name, None)
        if callable(function) and not getattr(function, _WRAPPED, False):
            setattr(module, name, _loader_without_extra(function))
            wrapped.append(name)
    return wrapped


def _no_extra(params: Any) -> None:
    if hasattr(params, "use_extra_bufts"):
        params.use_extra_bufts = False


def _defaults_without_extra(function: Callable[..., Any]) -> Callable[..., Any]:
    def llama_model_default_params() -> Any:
        params = function()
        _no_extra(params)
        return params

    setattr(llama_model_default_params, _WRAPPED, True)
    return llama_model_default_params


def _loader_without_extra(function: Callable[..., Any]) -> Callable[..., Any]:
    def load(*args: Any) -> Any:
        # (path, params) or (paths, n_paths, params): the params struct is the last argument.
        if args:
            _no_extra(args[-1])
        return function(*args)

    setattr(load, _WRAPPED, True)
    load.__name__ = getattr(function, "__name__", "load")
    load.__doc__ = getattr(function, "__doc__", None)
    return load


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def _log(message: str) -> None:
    print(f"{LOG_PREFIX} {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> None:
    """Run ``argv[0]`` (a module) as ``__main__`` with ``argv[1:]`` as its arguments."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        raise SystemExit("usage: _launch.py <module> [arguments...]")
    module = args.pop(0)
    parent = int(os.environ.pop(PARENT_PID_ENV, "0") or 0)
    # Not on the command line (world-readable): the key comes in the environment, and is
    # removed from it so that nothing the server starts inherits it.
    api_key = os.environ.pop(API_KEY_ENV, "")
    if api_key:
        args.insert(0, f"--api_key={api_key}")
    if parent and os.name == "posix":
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    faulthandler.enable()  # a segfault writes the Python stack to the log before dying
    extra, why = extra_buffer_types()
    if extra:
        _log(f"extra buffer types on ({why})")
    else:
        try:
            import llama_cpp.llama_cpp as native
        except ImportError:
            _log(f"extra buffer types off ({why}); llama_cpp is not importable here")
        else:
            wrapped = disable_extra_buffer_types(native)
            # The package re-exports them (`from .llama_cpp import *`): wrap those names too.
            disable_extra_buffer_types(sys.modules["llama_cpp"])
            _log(f"extra buffer types off ({why}): use_extra_bufts=False via {', '.join(wrapped)}")
    sys.argv = [sys.argv[0], *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
