"""The human's local llama.cpp server (evals/local_server.py, evals/llama_server.py): completion
log-probabilities without llama-cpp-python's logits table, the same as its own server's with the
table; and a server that ends with the process that started it, however that one ends.

    .venv/bin/python -m pytest tests/test_evals_local_server.py -q
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from evals.local_server import peak_rss, serve_gguf

ROOT = Path(__file__).resolve().parent.parent
PROMPTS = ["def add(a, b):\n    return", "import os\nimport sys\n\n\ndef main(argv):\n    ", "x = [1, 2, 3]\nfor"]


def complete(url: str, prompt: str, **kw) -> dict:
    r = httpx.post(f"{url}/completions", json={"model": "memorizer", "prompt": prompt, "temperature": 0,
                                               "seed": 0, **kw}, timeout=60)
    r.raise_for_status()
    return r.json()["choices"][0]


def same_logprobs(a: dict, b: dict) -> None:
    assert (a["text"], a["finish_reason"]) == (b["text"], b["finish_reason"])
    if a["logprobs"] is None or b["logprobs"] is None:
        assert a["logprobs"] is b["logprobs"] is None
        return
    la, lb = a["logprobs"], b["logprobs"]
    assert lb["tokens"] == la["tokens"] and lb["text_offset"] == la["text_offset"]
    assert lb["token_logprobs"] == pytest.approx(la["token_logprobs"], abs=1e-5)
    for ta, tb in zip(la["top_logprobs"], lb["top_logprobs"], strict=True):
        assert list(tb) == list(ta) and list(tb.values()) == pytest.approx(list(ta.values()), abs=1e-5)


REQUESTS = [{"max_tokens": 1, "logprobs": 20}, {"max_tokens": 6, "logprobs": 3},
            {"max_tokens": 8, "logprobs": 2, "stop": ["\n"]}, {"max_tokens": 5}]


@pytest.mark.slow
def test_logprobs_without_the_logits_table_are_the_librarys_own(test_models, tmp_path):
    """The acceptor's request (1 token, top 20 log-probs) and longer ones, with a stop string:
    evals.llama_server (logits_all off) answers a first request as llama_cpp.server does with
    logits_all on; and every later one, each reusing part of the cache the ones before left, as
    the library answers that prompt evaluated whole (cold), with its logits table."""
    import llama_cpp

    gguf = test_models.memorizer_gguf
    with serve_gguf(gguf, "memorizer", 1024, tmp_path / "old.log", timeout=60, module="llama_cpp.server",
                    extra=("--logits_all", "True")) as old, \
            serve_gguf(gguf, "memorizer", 1024, tmp_path / "new.log", timeout=60) as new:
        same_logprobs(complete(old.url, PROMPTS[0], **REQUESTS[0]), complete(new.url, PROMPTS[0], **REQUESTS[0]))
        # the library, cold: its server's defaults for a request (repeat_penalty 1.1), its table
        ref = llama_cpp.Llama(str(gguf), n_ctx=1024, logits_all=True, verbose=False, seed=0)
        for prompt in PROMPTS + PROMPTS[::-1] + [PROMPTS[1] + "x = 1\n" * n for n in range(1, 40, 7)]:
            for kw in REQUESTS:
                ref.reset()
                want = ref.create_completion(prompt, temperature=0, seed=0, repeat_penalty=1.1, **kw)["choices"][0]
                same_logprobs(want, complete(new.url, prompt, **kw))
        ref.close()
        assert peak_rss(new.pid) > 0


CHILD = """
import sys, time
from pathlib import Path
from evals.local_server import serve_gguf
with serve_gguf(Path(sys.argv[1]), "memorizer", 512, Path(sys.argv[2]), timeout=60) as s:
    print(s.pid, flush=True)
    time.sleep(600)
"""


def gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # a zombie is gone for our purpose (its parent, here init or the child, has not reaped it yet)
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return True
        except OSError:
            return True
        time.sleep(0.1)
    return False


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL, signal.SIGINT])
def test_the_server_ends_with_the_process_that_started_it(test_models, tmp_path, sig):
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(CHILD), str(test_models.memorizer_gguf),
                              str(tmp_path / "server.log")], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                             start_new_session=True)  # its own group: a signal to it alone, as `kill PID` sends
    try:
        server = int(child.stdout.readline())
        assert not gone(server, 0.2)
        child.send_signal(sig)
        child.wait(30)
        assert gone(server, 20), f"the server {server} outlived its parent ({sig.name})"
    finally:
        child.kill()
        child.wait()


def servers_of(pid: int) -> list[int]:
    """The llama.cpp servers (evals.llama_server) among the children of `pid`."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid and \
                    b"evals.llama_server" in (stat.parent / "cmdline").read_bytes():
                out.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            pass
    return out


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_empower_evals_with_a_built_in_human_leaves_no_server_behind(test_models, tmp_path):
    """`empower-evals --human gemma-3-270m` starts one server a role; a SIGTERM mid-run (which
    runs no `finally`) still ends both."""
    from coach.builtin import BUILTINS
    from coach.types import CoachError

    try:
        BUILTINS["gemma-3-270m"].gguf()
    except CoachError as exc:
        pytest.skip(f"gemma-3-270m is not installed: {exc}")
    exe = Path(sys.executable).parent / "empower-evals"
    proc = subprocess.Popen([str(exe), "--human", "gemma-3-270m", "--assistant", str(test_models.memorizer_gguf),
                             "--dataset", "builtin", "--limit", "1", "--concurrency", "1", "--out", str(tmp_path / "run")],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        # config.json is written once the human's servers answer: the run is then under way
        while not (tmp_path / "run/config.json").exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        servers = servers_of(proc.pid)
        assert len(servers) == 2, f"empower-evals ({proc.poll()}) does not run two servers: {servers}"
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        for pid in servers:
            assert gone(pid, 20), f"a server ({pid}) outlived empower-evals"
    finally:
        proc.kill()
        proc.wait()
