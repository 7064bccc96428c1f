"""Real servers on loopback for the tests: llama-cpp-python's OpenAI-compatible server serving
the memorizer GGUF (a module-scoped fixture: import it into a test module to use it).

llama_server is the library's server as it is (`python -m llama_cpp.server`, its logits table
on: streamed completions with logprobs, as a person's own server has them), for the editor's
backend; human_server is the one empower-evals starts for a built-in human
(evals/llama_server.py: no logits table)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from evals.local_server import free_port  # noqa: F401  (the tests import it from here)

# ------------------------------------------------------------------ llama-cpp-python's server

@contextlib.contextmanager
def serve_llama(model: Path, log: Path, n_ctx: int = 1024, alias: str = "memorizer", module: str = "llama_cpp.server"):
    """(base URL, log path) of a llama-cpp-python server (`python -m MODULE`) serving `model` on a
    free port, while in the block (started by evals/local_server.py)."""
    from evals.local_server import ServerError, serve_gguf

    # by default a new request cuts the one streaming short: keep requests independent, so that
    # only the client leaving can stop a generation (the cancel test relies on it)
    served = serve_gguf(model, alias, n_ctx, log, timeout=60, extra=("--interrupt_requests", "False"), module=module)
    try:
        url = served.__enter__().url
    except ServerError as exc:
        pytest.fail(f"{exc}:\n{log.read_text()[-2000:]}")
    try:
        yield url, log
    finally:
        served.__exit__(None, None, None)


@pytest.fixture(scope="module")
def llama_server(test_models, tmp_path_factory):
    """(base URL, log path) of a llama_cpp.server serving the memorizer on a free port."""
    with serve_llama(test_models.memorizer_gguf, tmp_path_factory.mktemp("llama-server") / "server.log") as served:
        yield served


@pytest.fixture(scope="module")
def human_server(test_models, tmp_path_factory):
    """The server empower-evals starts for a built-in human (evals/llama_server.py), with a
    4,096-token context: a simulated human's prompt holds a whole problem statement, more than
    the memorizer's 1,024 (its answers are nonsense either way)."""
    from evals.local_server import SERVER

    with serve_llama(test_models.memorizer_gguf, tmp_path_factory.mktemp("human-server") / "server.log",
                     n_ctx=4096, module=SERVER) as served:
        yield served
