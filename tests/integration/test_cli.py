"""The ``openai-chatapi`` command line, driven as a user drives it: a subprocess with arguments
and piped stdin, against a real loopback HTTP server (``tests/support/cli_server.py``)."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from openai_chatapi.local import LOCAL_EXTRA_HINT, local_extra_available

from ..support.cli_server import CLIFakeServer, running_server
from ..support.payload_scenarios import PDF_BYTES, WAV_BYTES

REPO_ROOT = Path(__file__).resolve().parents[2]
# Generous: the machine may be busy; nothing here is timed, this only bounds a hang.
TIMEOUT = 120
API_KEY = "sk-cli-test-key"


@pytest.fixture
def fake() -> Iterator[CLIFakeServer]:
    with running_server(CLIFakeServer()) as state:
        yield state


def _env(extra: Mapping[str, str] | None = None, pythonpath: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    paths = [str(REPO_ROOT), *([str(pythonpath)] if pythonpath else [])]
    env["PYTHONPATH"] = os.pathsep.join([*paths, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("OPENAI_CHATAPI_LOCAL_MODEL", None)
    env.update(extra or {})
    return env


def _endpoint(fake: CLIFakeServer, model: str = "fake-model") -> dict[str, str]:
    return {"OPENAI_BASE_URL": fake.base_url, "OPENAI_API_KEY": API_KEY, "OPENAI_MODEL": model}


def run_cli(
    *args: str,
    env: Mapping[str, str] | None = None,
    stdin: str = "",
    cwd: Path | None = None,
    timeout: float = TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "openai_chatapi", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=dict(env) if env is not None else _env(),
        cwd=cwd,
        timeout=timeout,
    )


def _one_error_line(stderr: str) -> str:
    """The single stderr line of a failed run (and proof there is no traceback)."""
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens on it any more


def _png(path: Path) -> Path:
    """A valid 1x1 PNG written by hand (no Pillow needed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )
    return path


def _roles_and_text(body: dict[str, Any]) -> list[tuple[str, Any]]:
    return [(m["role"], m.get("content")) for m in body["messages"]]


# --------------------------------------------------------------------------- one-shot chat


def test_one_shot_chat_streams_the_reply_using_the_environment(fake: CLIFakeServer) -> None:
    result = run_cli("chat", "hello there", env=_env(_endpoint(fake)))

    assert result.returncode == 0, result.stderr
    assert result.stdout == "echo: hello there\n"
    assert result.stderr == ""
    (request,) = [r for r in fake.requests if r.path.endswith("/chat/completions")]
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.body["model"] == "fake-model"
    assert request.body["stream"] is True
    assert _roles_and_text(request.body) == [("user", "hello there")]


def test_no_stream_waits_for_the_whole_reply(fake: CLIFakeServer) -> None:
    result = run_cli("chat", "--no-stream", "hi", env=_env(_endpoint(fake)))

    assert result.returncode == 0, result.stderr
    assert result.stdout == "echo: hi\n"
    (body,) = fake.chat_bodies
    assert not body.get("stream")


def test_json_prints_the_full_typed_response(fake: CLIFakeServer) -> None:
    result = run_cli("chat", "--json", "hi", env=_env(_endpoint(fake)))

    assert result.returncode == 0, result.stderr
    response = json.loads(result.stdout)
    assert response["object"] == "chat.completion"
    assert response["model"] == "fake-model"
    assert response["choices"][0]["message"] == {"role": "assistant", "content": "echo: hi"}
    assert response["choices"][0]["finish_reason"] == "stop"
    usage = response["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0


def test_system_temperature_and_max_tokens_reach_the_request(fake: CLIFakeServer) -> None:
    result = run_cli(
        "chat",
        "--system",
        "Be terse.",
        "--temperature",
        "0.3",
        "--max-tokens",
        "7",
        "question",
        env=_env(_endpoint(fake)),
    )

    assert result.returncode == 0, result.stderr
    (body,) = fake.chat_bodies
    assert _roles_and_text(body) == [("system", "Be terse."), ("user", "question")]
    assert body["temperature"] == 0.3
    assert body["max_tokens"] == 7


def test_flags_win_over_the_environment(fake: CLIFakeServer) -> None:
    env = _env(
        {
            "OPENAI_BASE_URL": f"http://127.0.0.1:{_closed_port()}/v1",
            "OPENAI_API_KEY": "sk-from-env",
            "OPENAI_MODEL": "fake-model",
        }
    )
    result = run_cli(
        "chat",
        "--base-url",
        fake.base_url,
        "--api-key",
        "sk-from-flag",
        "--model",
        "other-model",
        "hi",
        env=env,
    )

    assert result.returncode == 0, result.stderr
    (request,) = [r for r in fake.requests if r.path.endswith("/chat/completions")]
    assert request.headers["authorization"] == "Bearer sk-from-flag"
    assert request.body["model"] == "other-model"


def test_image_flag_sends_the_image(fake: CLIFakeServer, tmp_path: Path) -> None:
    image = _png(tmp_path / "dot.png")
    result = run_cli("chat", "--image", str(image), "what is this?", env=_env(_endpoint(fake)))

    assert result.returncode == 0, result.stderr
    (body,) = fake.chat_bodies
    parts = body["messages"][-1]["content"]
    assert parts[0] == {"type": "text", "text": "what is this?"}
    url = parts[1]["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    assert base64.b64decode(url.split(",", 1)[1]) == image.read_bytes()


def test_audio_and_file_flags_send_input_audio_and_file_parts(
    fake: CLIFakeServer, tmp_path: Path
) -> None:
    clip = tmp_path / "hello.wav"
    clip.write_bytes(WAV_BYTES)
    pdf = tmp_path / "notes.pdf"
    pdf.write_bytes(PDF_BYTES)
    args = ["chat", "--audio", str(clip), "--file", str(pdf), "--no-stream", "summarise"]
    result = run_cli(*args, env=_env(_endpoint(fake)))

    assert result.returncode == 0, result.stderr
    (body,) = fake.chat_bodies
    assert body["messages"][-1]["content"] == [
        {"type": "text", "text": "summarise"},
        {
            "type": "input_audio",
            "input_audio": {"data": base64.b64encode(WAV_BYTES).decode(), "format": "wav"},
        },
        {
            "type": "file",
            "file": {
                "filename": "notes.pdf",
                "file_data": "data:application/pdf;base64," + base64.b64encode(PDF_BYTES).decode(),
            },
        },
    ]


def test_a_bad_audio_file_is_reported_in_one_line(fake: CLIFakeServer, tmp_path: Path) -> None:
    pdf = tmp_path / "notes.pdf"
    pdf.write_bytes(PDF_BYTES)
    result = run_cli("chat", "--audio", str(pdf), "hi", env=_env(_endpoint(fake)))

    assert result.returncode != 0
    assert "notes.pdf" in result.stderr and "not WAV or MP3" in result.stderr
    assert fake.chat_bodies == []


# --------------------------------------------------------------------------- tools


TOOL_MODULE = '''
import json, os
from openai_chatapi import tool

@tool
def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: The first one.
        b: The second one.
    """
    with open(os.environ["CLI_TOOL_LOG"], "a") as log:
        log.write(json.dumps({"a": a, "b": b, "types": [type(a).__name__, type(b).__name__]}))
        log.write("\\n")
    return a + b
'''


@pytest.mark.parametrize("mode", [[], ["--no-stream"]], ids=["streamed", "not-streamed"])
def test_tools_flag_registers_and_runs_tool_functions(
    fake: CLIFakeServer, tmp_path: Path, mode: list[str]
) -> None:
    (tmp_path / "cli_tools_mod.py").write_text(TOOL_MODULE)
    log = tmp_path / "calls.jsonl"
    fake.tool_arguments = {"a": 2, "b": 3}
    env = _env({**_endpoint(fake), "CLI_TOOL_LOG": str(log)}, pythonpath=tmp_path)

    result = run_cli("chat", *mode, "--tools", "cli_tools_mod:add", "add 2 and 3", env=env)

    assert result.returncode == 0, result.stderr
    assert result.stdout == "tool said: 5\n"
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert calls == [{"a": 2, "b": 3, "types": ["int", "int"]}]
    first, second = fake.chat_bodies
    (definition,) = first["tools"]
    assert definition["function"]["name"] == "add"
    assert set(definition["function"]["parameters"]["properties"]) == {"a", "b"}
    assert [m["role"] for m in second["messages"]] == ["user", "assistant", "tool"]
    assert second["messages"][1]["tool_calls"][0]["function"]["name"] == "add"
    assert second["messages"][2]["content"] == "5"


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("no_such_module_xyz:add", "no_such_module_xyz"),
        ("cli_tools_mod:missing", "missing"),
        ("cli_tools_mod", "module:function"),
        ("cli_tools_mod:json", "cannot register"),
    ],
)
def test_bad_tools_spec_is_a_usage_error(
    fake: CLIFakeServer, tmp_path: Path, spec: str, fragment: str
) -> None:
    (tmp_path / "cli_tools_mod.py").write_text(TOOL_MODULE)
    env = _env(_endpoint(fake), pythonpath=tmp_path)

    result = run_cli("chat", "--tools", spec, "hi", env=env)

    assert result.returncode == 2
    line = _one_error_line(result.stderr)
    assert line.startswith("openai-chatapi: error:") and fragment in line
    assert fake.chat_bodies == []


# --------------------------------------------------------------------------- interactive


def test_interactive_session_keeps_history_and_runs_commands(
    fake: CLIFakeServer, tmp_path: Path
) -> None:
    saved = tmp_path / "conversation.json"
    image = _png(tmp_path / "dot.png")
    script = "\n".join(
        [
            "/system You are terse.",
            "first question",
            "second question",
            "/stats",
            f"/save {saved}",
            f"/image {image}",
            "look at this",
            "/clear",
            "after clear",
            f"/load {saved}",
            "after load",
            "/exit",
            "never sent",
            "",
        ]
    )
    result = run_cli("chat", stdin=script, env=_env(_endpoint(fake)))

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    bodies = fake.chat_bodies
    assert len(bodies) == 5  # "never sent" comes after /exit
    system = ("system", "You are terse.")
    first_turn = [system, ("user", "first question"), ("assistant", "echo: first question")]
    assert _roles_and_text(bodies[0]) == first_turn[:2]
    # The second request carries the first turn: the session keeps its history.
    assert _roles_and_text(bodies[1]) == [*first_turn, ("user", "second question")]
    # /image attaches the picture to the next message only.
    image_parts = bodies[2]["messages"][-1]["content"]
    assert image_parts[0] == {"type": "text", "text": "look at this"}
    assert image_parts[1]["image_url"]["url"].startswith("data:image/png;base64,")
    # /clear forgets the conversation but keeps the system prompt.
    assert _roles_and_text(bodies[3]) == [system, ("user", "after clear")]
    # /load restores what /save wrote (before the image turn).
    second_turn = [("user", "second question"), ("assistant", "echo: second question")]
    assert _roles_and_text(bodies[4]) == [*first_turn, *second_turn, ("user", "after load")]
    document = json.loads(saved.read_text())
    assert len(document["messages"]) == 5
    # /stats reports the two requests made before it, with the usage the server counted.
    start = result.stdout.index("{")
    stats, _ = json.JSONDecoder().raw_decode(result.stdout[start:])
    assert stats["requests"] == 2 and stats["failures"] == 0
    assert stats["total_tokens"] == stats["prompt_tokens"] + stats["completion_tokens"] > 0
    assert "echo: first question\n" in result.stdout
    assert "[system prompt set]" in result.stdout and "[conversation cleared]" in result.stdout


@pytest.mark.parametrize(
    "content",
    [b"{not json at all", b'{"format": "something-else", "messages": []}', b"\xff\xfe\x00"],
    ids=["corrupt", "foreign", "binary"],
)
def test_corrupt_load_file_reports_one_line_and_changes_nothing(
    fake: CLIFakeServer, tmp_path: Path, content: bytes
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    saved = tmp_path / "after.json"
    script = f"first\n/load {bad}\nsecond\n/save {saved}\n/exit\n"

    result = run_cli("chat", stdin=script, env=_env(_endpoint(fake)))

    assert result.returncode == 0
    line = _one_error_line(result.stderr)
    assert line.startswith("error: cannot load a conversation from") and str(bad) in line
    _, second = fake.chat_bodies
    assert _roles_and_text(second) == [
        ("user", "first"),
        ("assistant", "echo: first"),
        ("user", "second"),
    ]
    assert len(json.loads(saved.read_text())["messages"]) == 4


def test_system_without_text_shows_the_prompt_and_keeps_it(fake: CLIFakeServer) -> None:
    script = "/system\n/system Be terse.\n/system\nhi\n"
    result = run_cli("chat", stdin=script, env=_env(_endpoint(fake)))

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "[no system prompt]" in lines
    assert "[system prompt: Be terse.]" in lines
    (body,) = fake.chat_bodies
    assert _roles_and_text(body) == [("system", "Be terse."), ("user", "hi")]


def test_unknown_interactive_command_and_missing_argument_are_reported(
    fake: CLIFakeServer,
) -> None:
    result = run_cli("chat", stdin="/frobnicate\n/save\nhi\n", env=_env(_endpoint(fake)))

    assert result.returncode == 0
    assert "Traceback" not in result.stderr
    errors = result.stderr.splitlines()
    assert len(errors) == 2
    assert "/frobnicate" in errors[0] and "/save" in errors[1]
    assert result.stdout.endswith("echo: hi\n")


def _spawn_session(env: Mapping[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "openai_chatapi", "chat"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(env),
    )


@pytest.mark.skipif(os.name != "posix", reason="sends SIGINT")
def test_ctrl_c_cancels_the_reply_and_the_session_goes_on(
    fake: CLIFakeServer, tmp_path: Path
) -> None:
    fake.stall_on = "slow"
    saved = tmp_path / "after-cancel.json"
    proc = _spawn_session(_env(_endpoint(fake)))
    try:
        assert proc.stdin is not None
        proc.stdin.write("first\nslow please\n")
        proc.stdin.flush()
        if not fake.stream_started.wait(TIMEOUT):
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"the slow reply never started: {out=} {err=} {fake.chat_bodies=}")
        proc.send_signal(signal.SIGINT)  # Ctrl-C while the reply is streaming
        out, err = proc.communicate(f"/save {saved}\nafter\n/exit\n", timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert "[cancelled: the conversation is unchanged]" in out
    # The cancelled turn left no trace: neither the question nor the partial reply.
    messages = json.loads(saved.read_text())["messages"]
    assert [(m["role"], m["content"]) for m in messages] == [
        ("user", "first"),
        ("assistant", "echo: first"),
    ]
    last = fake.chat_bodies[-1]
    assert _roles_and_text(last) == [
        ("user", "first"),
        ("assistant", "echo: first"),
        ("user", "after"),
    ]
    assert out.endswith("echo: after\n")


def _interrupt_at_the_prompt(
    fake: CLIFakeServer, interrupt: Callable[[subprocess.Popen[str]], None]
) -> tuple[int, str]:
    """Run a session to its prompt after one reply, call ``interrupt``; return (code, stderr)."""
    proc = _spawn_session(_env(_endpoint(fake)))
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write("hello\n/stats\n")
        proc.stdin.flush()
        # Wait until the session is back at the prompt: /stats answered after the reply.
        seen = ""
        while '"requests"' not in seen:
            line = proc.stdout.readline()
            assert line, "the session ended early"
            seen += line
        interrupt(proc)
        # stdin stays open (communicate() would close it): a blocked read must not hang us.
        proc.wait(timeout=TIMEOUT)
        assert proc.stderr is not None
        return proc.returncode, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.skipif(os.name != "posix", reason="sends SIGINT")
def test_ctrl_c_at_the_prompt_leaves_with_code_130(fake: CLIFakeServer) -> None:
    code, err = _interrupt_at_the_prompt(fake, lambda proc: proc.send_signal(signal.SIGINT))
    assert code == 130
    assert _one_error_line(err) == "openai-chatapi: interrupted"


def _tgkill(pid: int, tid: int, sig: int) -> None:
    """Send ``sig`` to one thread ``tid`` of process ``pid`` (Linux's tgkill)."""
    import ctypes
    import platform

    numbers = {"x86_64": 234, "aarch64": 131}  # SYS_tgkill
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.syscall(numbers[platform.machine()], pid, tid, sig) == 0, ctypes.get_errno()


def _ctrl_c_on_the_input_thread(proc: subprocess.Popen[str]) -> None:
    threads = [int(t) for t in os.listdir(f"/proc/{proc.pid}/task") if int(t) != proc.pid]
    assert threads, "the session has no input thread"
    _tgkill(proc.pid, threads[0], signal.SIGINT)


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.uname().machine not in ("x86_64", "aarch64"),
    reason="sends a signal to one thread of the child (tgkill)",
)
def test_ctrl_c_handled_on_the_input_thread_at_the_prompt_still_leaves(
    fake: CLIFakeServer,
) -> None:
    # The kernel may hand a terminal's Ctrl-C to any thread: on the stdin reader's, Python's
    # flag was set but the loop slept in select() at the prompt for good (CI hung here once).
    code, err = _interrupt_at_the_prompt(fake, _ctrl_c_on_the_input_thread)
    assert code == 130
    assert _one_error_line(err) == "openai-chatapi: interrupted"


@pytest.mark.skipif(os.name != "posix", reason="needs a pseudo-terminal")
def test_interactive_markdown_is_rendered_on_a_terminal(fake: CLIFakeServer) -> None:
    pytest.importorskip("rich")
    import pty

    fake.reply_text = "This is **very bold** text"
    master, slave = pty.openpty()
    env = _env({**_endpoint(fake), "TERM": "xterm", "COLUMNS": "80"})
    proc = subprocess.Popen(
        [sys.executable, "-m", "openai_chatapi", "chat"],
        stdin=subprocess.PIPE,
        stdout=slave,
        stderr=subprocess.PIPE,
        env=env,
    )
    os.close(slave)
    try:
        _, err = proc.communicate(b"hi\n/exit\n", timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = b""
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the terminal's other end is closed
            break
        if not data:
            break
        output += data
    os.close(master)

    assert proc.returncode == 0, err
    text = output.decode("utf-8", "replace")
    assert "very bold" in text
    assert "**" not in text  # rendered as Markdown, not shown raw
    assert "\x1b[" in text  # with terminal styling


def test_piped_output_is_plain_text(fake: CLIFakeServer) -> None:
    fake.reply_text = "This is **very bold** text"
    result = run_cli("chat", stdin="hi\n", env=_env(_endpoint(fake)))

    assert result.returncode == 0, result.stderr
    assert result.stdout == "This is **very bold** text\n"


# --------------------------------------------------------------------------- models


def test_models_lists_the_model_ids(fake: CLIFakeServer) -> None:
    result = run_cli("models", env=_env(_endpoint(fake)))

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["fake-model", "other-model"]
    (request,) = fake.requests
    assert (request.method, request.path) == ("GET", "/v1/models")


def test_models_exits_1_when_the_answer_is_no_model_list(fake: CLIFakeServer) -> None:
    fake.models_body = {"id": "chatcmpl-1", "object": "chat.completion", "choices": []}
    result = run_cli("models", env=_env(_endpoint(fake)))

    assert result.returncode == 1
    assert "no 'data' list" in _one_error_line(result.stderr)
    assert result.stdout == ""


# --------------------------------------------------------------------------- failures


@pytest.mark.parametrize(
    "args",
    [
        ["chat", "--bogus", "hi"],
        ["chat", "--temperature", "hot", "hi"],
        ["chat", "--temperature", "5", "hi"],
        ["chat", "--max-tokens", "0", "hi"],
        ["chat", "--timeout", "-1", "hi"],
        ["frobnicate"],
        [],
    ],
    ids=[
        "unknown-flag",
        "nan-temperature",
        "temperature-range",
        "max-tokens",
        "timeout",
        "cmd",
        "none",
    ],
)
def test_bad_flags_exit_2_with_one_line(fake: CLIFakeServer, args: list[str]) -> None:
    result = run_cli(*args, env=_env(_endpoint(fake)))

    assert result.returncode == 2
    assert _one_error_line(result.stderr).startswith("openai-chatapi")
    assert result.stdout == ""
    assert fake.requests == []


def test_bad_base_url_is_a_usage_error() -> None:
    result = run_cli("chat", "--base-url", "not-a-url", "hi")

    assert result.returncode == 2
    assert "api_base_url" in _one_error_line(result.stderr)


@pytest.mark.parametrize("mode", [[], ["--no-stream"], ["models"]], ids=["stream", "plain", "ls"])
def test_refused_connection_exits_1_with_one_line(mode: list[str]) -> None:
    port = _closed_port()
    command = mode if mode == ["models"] else ["chat", *mode, "hi"]
    args = [*command, "--base-url", f"http://127.0.0.1:{port}/v1", "--max-retries", "0"]

    result = run_cli(*args)

    assert result.returncode == 1
    line = _one_error_line(result.stderr)
    assert line.startswith("openai-chatapi: error: connection failed")
    assert f"127.0.0.1:{port}" in line


@pytest.mark.parametrize("mode", [[], ["--no-stream"]], ids=["streamed", "not-streamed"])
@pytest.mark.parametrize(
    "server_message", [None, "Not Found"], ids=["server-names-it", "server-does-not"]
)
def test_unknown_model_exits_1_naming_it(
    fake: CLIFakeServer, mode: list[str], server_message: str | None
) -> None:
    fake.unknown_model_message = server_message
    result = run_cli("chat", *mode, "--model", "no-such-model", "hi", env=_env(_endpoint(fake)))

    assert result.returncode == 1
    line = _one_error_line(result.stderr)
    assert "404" in line and "no-such-model" in line


def test_debug_shows_the_traceback() -> None:
    port = _closed_port()
    args = ["--base-url", f"http://127.0.0.1:{port}/v1", "--max-retries", "0", "--debug"]

    result = run_cli("chat", "hi", *args)

    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "APIConnectionError" in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("openai-chatapi: error: connection failed")


def test_no_endpoint_says_it_uses_the_local_model(tmp_path: Path) -> None:
    # A missing model file makes the local server fail fast, extra installed or not.
    env = _env({"OPENAI_CHATAPI_LOCAL_MODEL": str(tmp_path / "missing.gguf")})
    result = run_cli("chat", "hi", env=env)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    notice, error = result.stderr.strip().splitlines()
    assert "no endpoint configured" in notice and "local model" in notice
    assert error.startswith("openai-chatapi: error:")
    assert ("missing.gguf" in error) or ("'local' extra" in error)


@pytest.mark.live
@pytest.mark.skipif(
    not local_extra_available(), reason=f"needs the 'local' extra: {LOCAL_EXTRA_HINT}"
)
def test_no_endpoint_chats_with_the_real_local_model() -> None:
    result = run_cli("chat", "--max-tokens", "8", "Say hello.", timeout=600)

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "no endpoint configured" in result.stderr and "local model" in result.stderr
    assert result.stdout.strip()  # a real model's words: structure, not wording
