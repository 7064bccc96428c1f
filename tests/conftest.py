"""Fixtures shared by the whole suite: the offline test models, and the `gpu` marker's skip."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# A suite started in the background by a non-interactive shell (`make test &`, some CI runners)
# inherits SIGINT ignored, and so would every command the tests start: Ctrl+C and the
# parent-death tests would test nothing. Python's own handler here gives each child the default.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def private_dirs(tmp_path, monkeypatch):
    """The editor's recovery copies, data, config and log in the test's own directory, never the
    real user's (the editor's tests use it for every test: pytestmark)."""
    monkeypatch.setenv("EMPOWER_RECOVERY_DIR", str(tmp_path / "recovery"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("EMPOWER_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.delenv("EMPOWER_LOG_DB", raising=False)


@pytest.fixture(scope="session")
def test_models():
    """The tiny tokenizer/models/GGUFs (tests/models.py), built once per clone and reused.

    The cache is `.cache/test-models` at the repo root; EMPOWER_TEST_MODELS points elsewhere.
    """
    from tests.models import build

    return build(Path(os.environ.get("EMPOWER_TEST_MODELS", ROOT / ".cache" / "test-models")))


@pytest.fixture(scope="module")
def one_torch_thread():
    """On 2 shared cores, one torch thread is several times faster than two that spin."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def pytest_collection_modifyitems(config, items):
    gpu_items = [item for item in items if "gpu" in item.keywords]
    if gpu_items and not _has_cuda():  # import torch only when some test asks for a GPU
        skip = pytest.mark.skip(reason="needs CUDA")
        for item in gpu_items:
            item.add_marker(skip)


def _has_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()
