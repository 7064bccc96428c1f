"""Real servers on loopback for the tests: llama-cpp-python's OpenAI-compatible server serving
the memorizer GGUF (a module-scoped fixture: import it into a test module to use it)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]



# ------------------------------------------------------------------ llama-cpp-python's server

@contextlib.contextmanager
def serve_llama(model: Path, log: Path, n_ctx: int = 1024, alias: str = "memorizer"):
    """(base URL, log path) of a llama_cpp.server serving `model` on a free port, while in the block."""
    port = free_port()
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(model),
           "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx),
           "--model_alias", alias, "--verbose", "False",
           # by default a new request cuts the one streaming short: keep requests independent,
           # so that only the client leaving can stop a generation (the cancel test relies on it)
           "--interrupt_requests", "False"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/models", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server did not answer within 60 s:\n{log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield url, log
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def llama_server(test_models, tmp_path_factory):
    """(base URL, log path) of a llama_cpp.server serving the memorizer on a free port."""
    with serve_llama(test_models.memorizer_gguf, tmp_path_factory.mktemp("llama-server") / "server.log") as served:
        yield served


@pytest.fixture(scope="module")
def human_server(test_models, tmp_path_factory):
    """The same with a 4,096-token context: a simulated human's prompt holds a whole problem
    statement, more than the memorizer's 1,024 (its answers are nonsense either way)."""
    with serve_llama(test_models.memorizer_gguf, tmp_path_factory.mktemp("human-server") / "server.log",
                     n_ctx=4096) as served:
        yield served
