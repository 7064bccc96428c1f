"""llama.cpp's OpenAI-compatible server on loopback, for a simulated human run from a local GGUF
(`empower-evals --human gemma-3-270m`): the same human code then talks to it as to vLLM.

    with serve_gguf(path, alias="gemma-3-270m") as server:
        server.url                                          # "http://127.0.0.1:PORT/v1"
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Server:
    url: str  # the base URL, ".../v1"
    pid: int
    log: Path


class ServerError(Exception):
    """The server did not start: one line for a person."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve_gguf(model: Path, alias: str, n_ctx: int = 8192, log: Path | None = None, timeout: float = 120,
               extra: tuple[str, ...] = ()):
    """Start `python -m llama_cpp.server` on a free loopback port and yield it (a Server); stop it
    on leaving. Its output goes to `log` (a temporary file by default), quoted when it fails."""
    import httpx

    port = free_port()
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
           "--port", str(port), "--n_ctx", str(n_ctx), "--model_alias", alias, "--verbose", "False", *extra]
    log = log or Path(tempfile.mkdtemp(prefix="empower-server-")) / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
                raise ServerError(f"llama.cpp's server for {alias} exited ({proc.returncode}): {tail[0]} (log: {log})")
            try:
                if httpx.get(f"{url}/models", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise ServerError(f"llama.cpp's server for {alias} did not answer within {timeout:.0f} s (log: {log})")
            time.sleep(0.1)
        yield Server(url, proc.pid, log)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
