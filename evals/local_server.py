"""llama.cpp's OpenAI-compatible server on loopback, for a simulated human run from a local GGUF
(`empower-evals --human gemma-3-270m`): the same human code then talks to it as to vLLM.

    with serve_gguf(path, alias="gemma-3-270m") as server:
        server.url                                          # "http://127.0.0.1:PORT/v1"
        peak_rss(server.pid)                                # its peak resident memory, bytes

The server is llama-cpp-python's own (`python -m llama_cpp.server`) started through
evals/llama_server.py (module=SERVER, the default), which keeps no logits table (logits_all
False) and still answers completion log-probabilities. module="llama_cpp.server" starts the
library's server as it is (bench/evals.py's "before", with `--logits_all True`).

The server ends with the block, and with this process: it gets SIGKILL when the thread that
started it ends (Linux's parent-death signal, set by evals/llama_server.py), so a kill -9 or a
SIGTERM of empower-evals does not leave it running. Start it from a thread that lives as long
as the server is needed (the main thread).
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

SERVER = "evals.llama_server"  # llama-cpp-python's server, log-probabilities without logits_all
N_CTX = 8192  # tokens of context: a HumanEval problem's human prompts hold ~1,200 at most


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


def peak_rss(pid: int) -> int | None:
    """The peak resident memory of a live process in bytes (Linux's VmHWM); None where unknown."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


@contextlib.contextmanager
def serve_gguf(model: Path, alias: str, n_ctx: int = N_CTX, log: Path | None = None, timeout: float = 120,
               extra: tuple[str, ...] = (), module: str = SERVER):
    """Start `python -m MODULE` (llama-cpp-python's server) on a free loopback port and yield it
    (a Server); stop it on leaving. Its output goes to `log` (a temporary file by default),
    quoted when it fails. `extra`: more of the server's options (`--n_threads 1`, ...)."""
    import httpx

    port = free_port()
    cmd = [sys.executable, "-m", module, "--model", str(model), "--host", "127.0.0.1",
           "--port", str(port), "--n_ctx", str(n_ctx), "--model_alias", alias, "--verbose", "False", *extra]
    log = log or Path(tempfile.mkdtemp(prefix="empower-server-")) / "server.log"
    root = str(Path(__file__).resolve().parent.parent)  # where `evals` is imported from, installed or not
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "EMPOWER_SERVER_PARENT": str(os.getpid()),
           "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
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
