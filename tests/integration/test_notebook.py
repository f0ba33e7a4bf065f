"""A real notebook: ``SyncChatAgent`` in cells and ``await ChatAgent(...).chat(...)`` in
another, executed by a real Jupyter kernel (nbclient + ipykernel, in the ``dev`` extra)
against the loopback server of ``cli_server.py`` (the kernel is another process)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from ..support.cli_server import CLIFakeServer, running_server

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK = Path(__file__).parents[1] / "support" / "notebooks" / "sync_and_async.ipynb"
REPO_ROOT = Path(__file__).resolve().parents[2]
KERNEL_TIMEOUT = 120  # seconds per cell: bounds a hang only


def _stdout(cell: Any) -> str:
    return "".join(
        output.get("text", "")
        for output in cell.get("outputs", [])
        if output.get("output_type") == "stream" and output.get("name") == "stdout"
    )


def test_sync_and_async_agents_in_a_jupyter_kernel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    )
    notebook = nbformat.read(NOTEBOOK, as_version=4)

    with running_server(CLIFakeServer()) as state:
        monkeypatch.setenv("CHATAPI_NOTEBOOK_URL", state.base_url)
        client = nbclient.NotebookClient(
            notebook,
            timeout=KERNEL_TIMEOUT,
            startup_timeout=KERNEL_TIMEOUT,
            kernel_name="python3",
            resources={"metadata": {"path": str(tmp_path)}},
        )
        client.execute()

    outputs = [_stdout(cell) for cell in notebook.cells]
    assert outputs[1] == "sync: echo: hello from a cell\n"
    # display_stream=True wrote the reply into the cell that streamed it.
    assert outputs[2] == "echo: streamed in a cell\npieces: 5\n"
    assert outputs[3] == "async: echo: hello from await\n"
    assert outputs[4] == (
        "history: ['hello from a cell', 'echo: hello from a cell', "
        "'streamed in a cell', 'echo: streamed in a cell']\n"
    )
    errors = [
        o
        for cell in notebook.cells
        for o in cell.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert errors == []
    assert [b["messages"][-1]["content"] for b in state.chat_bodies] == [
        "hello from a cell",
        "streamed in a cell",
        "hello from await",
    ]
