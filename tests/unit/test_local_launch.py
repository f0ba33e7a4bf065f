"""The local server's launcher: where the CPU reports AMX, llama.cpp gets
``use_extra_bufts = False`` (its AMX kernels crash there); elsewhere nothing changes.

The decision is unit-tested on sample ``/proc/cpuinfo`` texts and every value of
``$OPENAI_CHATAPI_LOCAL_REPACK``; the wrapping on a stand-in ``llama_cpp.llama_cpp`` and, with
the ``local`` extra, on the real one (the flag reaches the native load call through
``llama_cpp.Llama``); the whole launcher through ``LocalModelServer`` with the stand-in
server and, live, with llama.cpp and the bundled model forced onto the safe path.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from openai_chatapi import ChatAgent, ConfigurationError, RuntimeConfig
from openai_chatapi.local import LOCAL_EXTRA_HINT, LocalModelServer, _launch, local_extra_available
from openai_chatapi.local._launch import (
    REPACK_ENV,
    cpu_reports_amx,
    disable_extra_buffer_types,
    extra_buffer_types,
)

from ..integration.test_local import assert_stopped
from ..integration.test_local_exit import StandIn
from ..support.live_server import live_local_server  # noqa: F401  (one shared server per session)

REPO_ROOT = Path(__file__).resolve().parents[2]
TESTS_DIR = REPO_ROOT / "tests" / "support"
LIVE_STARTUP = 180.0

needs_local = pytest.mark.skipif(
    not local_extra_available(), reason=f"needs the 'local' extra: {LOCAL_EXTRA_HINT}"
)

SAPPHIRE_RAPIDS = textwrap.dedent(
    """\
    processor\t: 0
    vendor_id\t: GenuineIntel
    model name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz
    flags\t\t: fpu vme de pse avx2 avx512f avx512_bf16 amx_bf16 avx512_fp16 amx_tile amx_int8
    bugs\t\t: spectre_v1

    processor\t: 1
    flags\t\t: fpu vme de pse avx2 avx512f avx512_bf16 amx_bf16 avx512_fp16 amx_tile amx_int8
    """
)
ICE_LAKE = textwrap.dedent(
    """\
    processor\t: 0
    model name\t: Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz
    flags\t\t: fpu vme de pse avx2 avx512f avx512_vnni avx512_bf16 sha_ni
    bugs\t\t: spectre_v1 amx_is_not_a_bug_name
    """
)
ARM = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32\n"


# ---------------------------------------------------------------- the decision


@pytest.mark.parametrize(
    ("cpuinfo", "amx"),
    [(SAPPHIRE_RAPIDS, True), (ICE_LAKE, False), (ARM, False), ("", False)],
)
def test_cpu_reports_amx_reads_the_flags(cpuinfo: str, amx: bool) -> None:
    assert cpu_reports_amx(cpuinfo) is amx


def test_cpu_reports_amx_without_cpuinfo_is_false(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_launch, "CPUINFO_PATH", "/nonexistent/cpuinfo")
    assert cpu_reports_amx() is False


@pytest.mark.parametrize(
    ("value", "cpuinfo", "extra"),
    [
        (None, SAPPHIRE_RAPIDS, False),
        ("auto", SAPPHIRE_RAPIDS, False),
        ("", SAPPHIRE_RAPIDS, False),
        (" AUTO ", SAPPHIRE_RAPIDS, False),
        ("on", SAPPHIRE_RAPIDS, True),
        ("off", SAPPHIRE_RAPIDS, False),
        (None, ICE_LAKE, True),
        ("auto", ICE_LAKE, True),
        ("on", ICE_LAKE, True),
        ("Off", ICE_LAKE, False),
    ],
)
def test_extra_buffer_types_decision(value: str | None, cpuinfo: str, extra: bool) -> None:
    env = {} if value is None else {REPACK_ENV: value}
    decided, why = extra_buffer_types(env, cpuinfo)
    assert decided is extra
    assert ("AMX" in why) or (REPACK_ENV in why)


def test_this_machine_decision_is_what_auto_means() -> None:
    extra, _ = extra_buffer_types({})
    assert extra is not cpu_reports_amx()


# ---------------------------------------------------------------- the wrapping


class Params(ctypes.Structure):
    """The part of llama_model_params that matters here."""

    _fields_ = [("n_gpu_layers", ctypes.c_int32), ("use_extra_bufts", ctypes.c_bool)]


def fake_native() -> tuple[SimpleNamespace, list[bool]]:
    seen: list[bool] = []

    def llama_model_default_params() -> Params:
        return Params(0, True)

    def llama_model_load_from_file(path: bytes, params: Params) -> str:
        seen.append(params.use_extra_bufts)
        return "model"

    def llama_model_load_from_splits(paths: Any, n_paths: int, params: Params) -> str:
        seen.append(params.use_extra_bufts)
        return "model"

    module = SimpleNamespace(
        llama_model_default_params=llama_model_default_params,
        llama_model_load_from_file=llama_model_load_from_file,
        llama_model_load_from_splits=llama_model_load_from_splits,
    )
    return module, seen


def test_disable_extra_buffer_types_reaches_every_load() -> None:
    module, seen = fake_native()
    assert module.llama_model_default_params().use_extra_bufts is True
    wrapped = disable_extra_buffer_types(module)
    assert wrapped == [
        "llama_model_default_params",
        "llama_model_load_from_file",
        "llama_model_load_from_splits",
    ]
    assert module.llama_model_default_params().use_extra_bufts is False
    # Even params built elsewhere with the flag on reach the load call with it off.
    assert module.llama_model_load_from_file(b"m.gguf", Params(0, True)) == "model"
    assert module.llama_model_load_from_splits(None, 2, Params(0, True)) == "model"
    assert seen == [False, False]
    assert disable_extra_buffer_types(module) == [], "applying it twice wraps nothing more"
    module.llama_model_load_from_file(b"m.gguf", Params(0, True))
    assert seen == [False, False, False]


# Loads the bundled model with llama_cpp.Llama, recording the flag at the native call
# (the recorder sits under the launcher's wrapper, where llama.cpp itself would be).
REAL_LOAD = textwrap.dedent(
    """
    import json, sys
    import llama_cpp, llama_cpp.llama_cpp as native
    from openai_chatapi import local
    from openai_chatapi.local import _launch

    seen = []
    real = native.llama_model_load_from_file
    def recorder(path, params):
        seen.append(bool(params.use_extra_bufts))
        return real(path, params)
    native.llama_model_load_from_file = recorder
    if sys.argv[1] == "off":
        _launch.disable_extra_buffer_types(native)
    llm = llama_cpp.Llama(model_path=str(local.bundled_model_path()), n_ctx=64, verbose=True)
    print(json.dumps({"seen": seen, "params": bool(llm.model_params.use_extra_bufts)}))
    """
)


def load_real_model(mode: str) -> tuple[dict[str, Any], str]:
    result = subprocess.run(
        [sys.executable, "-c", REAL_LOAD, mode],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1]), result.stderr


@needs_local
def test_the_flag_reaches_llama_cpp_through_llama() -> None:
    default, default_log = load_real_model("on")
    safe, safe_log = load_real_model("off")
    assert default == {"seen": [True], "params": True}, "llama.cpp's default, untouched"
    assert safe == {"seen": [False], "params": False}
    # With the flag off the weights land in plain CPU buffers only: no AMX or CPU_REPACK
    # buffer and no repacking, even on a CPU with AMX (whose feature line still says AMX_INT8).
    assert model_buffer_types(safe_log) <= {"CPU", "CPU_Mapped"}, safe_log[-3000:]
    assert "repack tensor" not in safe_log and "preferred buffer type" not in safe_log
    print("default load's model buffers:", sorted(model_buffer_types(default_log)))


def model_buffer_types(log: str) -> set[str]:
    """The buffer types llama.cpp put the model's weights in ("AMX", "CPU_Mapped", ...)."""
    return set(re.findall(r"^load_tensors:\s+(\S+) model buffer size", log, re.MULTILINE))


def test_model_buffer_types_reads_llama_cpp_load_lines() -> None:
    amx_log = (
        "load_tensors:          AMX model buffer size =    95.34 MiB\n"
        "load_tensors:   CPU_Mapped model buffer size =    92.10 MiB\n"
        "CPU : AVX512 = 1 | AMX_INT8 = 1 | REPACK = 1 |\n"
    )
    assert model_buffer_types(amx_log) == {"AMX", "CPU_Mapped"}
    assert model_buffer_types(amx_log.split("\n", 1)[1]) == {"CPU_Mapped"}


# ---------------------------------------------------------------- through LocalModelServer


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "model.gguf"
    path.write_bytes(b"not really a model")
    return path


def test_an_unknown_setting_is_refused_before_starting(
    model_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = StandIn(model_file, env={REPACK_ENV: "sometimes"})
    with pytest.raises(ConfigurationError, match=REPACK_ENV) as info:
        server.start_sync()
    assert "auto, on, off" in str(info.value) and "sometimes" in str(info.value)
    assert server.pid is None
    monkeypatch.setenv(REPACK_ENV, "maybe")
    with pytest.raises(ConfigurationError, match="maybe"):
        StandIn(model_file).start_sync()


@pytest.mark.parametrize(("value", "extra"), [("off", False), ("on", True), ("auto", None)])
def test_the_child_takes_the_path_the_parent_reports(
    model_file: Path, tmp_path: Path, value: str, extra: bool | None
) -> None:
    log = tmp_path / "server.log"
    server = StandIn(
        model_file,
        env={"PYTHONPATH": str(TESTS_DIR), REPACK_ENV: value},
        log_path=log,
        startup_timeout=60,
    )
    assert server.extra_buffer_types is None
    with server:
        expected = (not cpu_reports_amx()) if extra is None else extra
        assert server.extra_buffer_types is expected
    assert_stopped(server)
    lines = [line for line in log.read_text().splitlines() if line.startswith("openai_chatapi:")]
    assert len(lines) == 1
    assert lines[0].startswith(
        "openai_chatapi: extra buffer types " + ("on" if expected else "off")
    )
    if not expected and local_extra_available():
        assert "use_extra_bufts=False via llama_model_default_params" in lines[0]


# ---------------------------------------------------------------- live


@pytest.mark.live
@needs_local
async def test_live_safe_path_answers(tmp_path: Path) -> None:
    """The AMX-safe path, forced on any CPU: llama.cpp and the bundled model still answer."""
    log = tmp_path / "llama.log"
    server = LocalModelServer(env={REPACK_ENV: "off"}, log_path=log, startup_timeout=LIVE_STARTUP)
    runtime = RuntimeConfig(enable_logging=False, timeout=180)
    async with server as config, ChatAgent(config, runtime) as agent:
        assert server.extra_buffer_types is False
        reply = await agent.chat("What is the capital of France?", max_tokens=16)
        assert reply.strip()
        assert agent.last_response is not None
        assert agent.last_response.choices[0].finish_reason in ("stop", "length")
    assert_stopped(server)
    text = log.read_text(errors="replace")
    assert "openai_chatapi: extra buffer types off (OPENAI_CHATAPI_LOCAL_REPACK=off)" in text
    assert "use_extra_bufts=False" in text
    buffers = [line for line in text.splitlines() if "model buffer size" in line]
    assert buffers, "llama.cpp's load log names the buffers it used"
    assert not any(("REPACK" in line or "AMX" in line) for line in buffers)


@pytest.mark.live
def test_live_session_server_logs_the_path_it_took(
    live_local_server: LocalModelServer,  # noqa: F811
    record_property: Any,
) -> None:
    """Which path the live suite runs on (AMX-safe or llama.cpp's default), from the child."""
    assert live_local_server.log_path is not None
    text = live_local_server.log_path.read_text(errors="replace")
    lines = [line for line in text.splitlines() if line.startswith("openai_chatapi: extra")]
    assert len(lines) == 1, text[-2000:]
    expected, _ = extra_buffer_types()
    assert live_local_server.extra_buffer_types is expected
    assert lines[0].startswith(
        "openai_chatapi: extra buffer types " + ("on" if expected else "off")
    )
    path = f"CPU reports AMX: {'yes' if cpu_reports_amx() else 'no'}; {lines[0]}"
    record_property("local_model_path", path)
    print(path)
