"""Peak added memory when sending a large video: our streamed body vs the naive approach.

Each approach runs in a fresh process that posts one chat request carrying a ~100 MB
video (as a base64 ``video_url`` data URL) to a loopback HTTP server that reads and
discards the body. The figure is the peak resident memory added while sending (Linux
``VmHWM`` after the send minus ``VmRSS`` before it, with the high-water mark reset
first), as a multiple of the file size.

* streamed: ``prepare_media`` → ``to_wire_parts`` → ``encode_json_body`` → httpx.
* naive: read the file, base64 it, build the payload, ``client.post(json=payload)``.

Run on its own: ``python scripts/bench_media.py [--size-mb 100]``; or call
``bench_media_memory(size_mb)`` (alias ``run``) from ``scripts/bench.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
TARGET_MULTIPLE = 1.5

__all__ = ["TARGET_MULTIPLE", "bench_media_memory", "make_video_file", "run"]


# ---------------------------------------------------------------- the video file


def _tiny_mp4() -> bytes:
    """A real one-second mp4 when PyAV is installed, else a bare ``ftyp`` box."""
    try:
        import io
        from fractions import Fraction

        import av
        from PIL import Image
    except ImportError:
        return b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2mp41"
    out = io.BytesIO()
    with av.open(out, mode="w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=Fraction(10))
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(10):
            image = Image.new("RGB", (64, 48), (i * 20, 80, 160))
            frame = av.VideoFrame.from_image(image)  # type: ignore[no-untyped-call]
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out.getvalue()


def make_video_file(path: Path, size_mb: int) -> int:
    """Write a valid mp4 padded with a random ``free`` box to about ``size_mb`` MiB."""
    head = _tiny_mp4()
    total = max(size_mb * 1024 * 1024, len(head) + 8)
    padding = total - len(head) - 8
    with path.open("wb") as handle:
        handle.write(head)
        # A 'free' box is skipped by every MP4 reader; random bytes defeat compression.
        handle.write((padding + 8).to_bytes(4, "big") + b"free")
        block = 4 * 1024 * 1024
        while padding > 0:
            chunk = os.urandom(min(block, padding))
            handle.write(chunk)
            padding -= len(chunk)
    return path.stat().st_size


# ---------------------------------------------------------------- loopback server


class _DiscardHandler(socketserver.StreamRequestHandler):
    """Reads each request body in 1 MiB pieces, throws it away, answers a small JSON."""

    def handle(self) -> None:
        reply = b'{"received": %d}'
        while True:
            request_line = self.rfile.readline()
            if not request_line:
                return
            length = 0
            while True:
                line = self.rfile.readline()
                if line in (b"\r\n", b"\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            remaining = length
            while remaining:
                chunk = self.rfile.read(min(remaining, 1024 * 1024))
                if not chunk:
                    return
                remaining -= len(chunk)
            body = reply % length
            self.wfile.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
            )
            self.wfile.flush()


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


# ---------------------------------------------------------------- measuring (child side)


def _status_kb(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status (Linux only)")


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")  # resets VmHWM to the current RSS
        return True
    except OSError:
        return False


async def _send_streamed(path: str, url: str) -> int:
    import httpx

    from openai_chatapi.media import MediaSettings, prepare_media, to_wire_parts

    try:
        from openai_chatapi.media._body import MediaSources, encode_json_body
    except ImportError:  # an older checkout (bench.py --package) had it in openai_chatapi.body
        from openai_chatapi.body import (  # type: ignore[import-not-found,no-redef]
            MediaSources,
            encode_json_body,
        )

    settings = MediaSettings(video_mode="native", max_media_bytes=8 * 1024**3)
    async with httpx.AsyncClient(timeout=120) as client:
        await client.post(url, content=b"{}")  # warm the pool and import paths
        prepare_media(video_paths=path, settings=settings)  # warm (loads PyAV if present)
        if not _reset_peak():
            raise RuntimeError("cannot reset VmHWM (/proc/self/clear_refs)")
        before = _status_kb("VmRSS")

        (part,) = prepare_media(video_paths=path, settings=settings)
        sources = MediaSources()
        content = [{"type": "text", "text": "Describe this video."}]
        content += to_wire_parts(part, settings, base_url=url, sources=sources)
        payload = {"model": "m", "messages": [{"role": "user", "content": content}]}
        body = encode_json_body(payload, sources)
        response = await client.post(url, content=body, headers=body.headers)
        response.raise_for_status()
        assert response.json()["received"] == body.content_length
        return (_status_kb("VmHWM") - before) * 1024


def _read_whole(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


async def _send_naive(path: str, url: str) -> int:
    import base64

    import httpx

    async with httpx.AsyncClient(timeout=120) as client:
        await client.post(url, content=b"{}")
        if not _reset_peak():
            raise RuntimeError("cannot reset VmHWM (/proc/self/clear_refs)")
        before = _status_kb("VmRSS")

        encoded = base64.b64encode(_read_whole(path)).decode("ascii")
        content = [
            {"type": "text", "text": "Describe this video."},
            {"type": "video_url", "video_url": {"url": f"data:video/mp4;base64,{encoded}"}},
        ]
        payload = {"model": "m", "messages": [{"role": "user", "content": content}]}
        response = await client.post(url, json=payload)
        response.raise_for_status()
        return (_status_kb("VmHWM") - before) * 1024


def _child(mode: str, path: str, url: str) -> None:
    sys.path.insert(0, str(REPO_ROOT))
    sender = _send_streamed if mode == "streamed" else _send_naive
    added = asyncio.run(sender(path, url))
    print(json.dumps({"mode": mode, "added_rss_bytes": added}))


# ---------------------------------------------------------------- driver


def _measure(mode: str, path: Path, url: str) -> int:
    result = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", mode, str(path), url],
        capture_output=True,
        text=True,
        check=False,
        cwd=str(REPO_ROOT),
    )
    if result.returncode != 0:
        raise RuntimeError(f"{mode} run failed:\n{result.stderr.strip()}")
    added: int = json.loads(result.stdout.strip().splitlines()[-1])["added_rss_bytes"]
    return added


def bench_media_memory(size_mb: int = 100) -> dict[str, Any]:
    """Send a ``size_mb`` MiB video both ways; return the peak added RSS of each.

    Keys: ``file_bytes``, ``streamed`` / ``naive`` (each ``added_rss_bytes`` and
    ``multiple`` of the file size), ``target_multiple`` and ``meets_target``.
    """
    server = _Server(("127.0.0.1", 0), _DiscardHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v1/chat/completions"
        with tempfile.TemporaryDirectory(prefix="bench_media_") as folder:
            path = Path(folder) / "video.mp4"
            size = make_video_file(path, size_mb)
            figures: dict[str, Any] = {"file_bytes": size}
            for mode in ("streamed", "naive"):
                added = _measure(mode, path, url)
                figures[mode] = {"added_rss_bytes": added, "multiple": round(added / size, 3)}
    finally:
        server.shutdown()
        server.server_close()
    figures["target_multiple"] = TARGET_MULTIPLE
    figures["meets_target"] = figures["streamed"]["multiple"] <= TARGET_MULTIPLE
    return figures


run = bench_media_memory


def _report(figures: dict[str, Any]) -> str:
    mib = figures["file_bytes"] / 2**20
    lines = [f"media memory: sending a {mib:.0f} MiB video (peak added RSS)"]
    for mode in ("streamed", "naive"):
        item = figures[mode]
        lines.append(
            f"  {mode:<9} {item['added_rss_bytes'] / 2**20:8.1f} MiB = "
            f"{item['multiple']:.2f}x the file"
        )
    verdict = "meets" if figures["meets_target"] else "MISSES"
    lines.append(f"  target ≤ {figures['target_multiple']}x: streamed {verdict} it")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size-mb", type=int, default=100)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--child", nargs=3, metavar=("MODE", "PATH", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(*args.child)
        return 0
    figures = bench_media_memory(args.size_mb)
    print(json.dumps(figures, indent=2) if args.json else _report(figures))
    return 0 if figures["meets_target"] else 1


if __name__ == "__main__":
    socket.setdefaulttimeout(300)
    sys.exit(main())
