"""Simulated humans: the oracle on a built-in problem, the answer parser, and the LLM human against
a real llama_cpp.server (slow) and against failing stdlib servers on loopback.

    .venv/bin/python -m pytest tests/test_evals_humans.py -q
"""

from __future__ import annotations

import dataclasses
import json
import math
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from evals import human_prompts
from evals.humans import (HUMANS, K_H, Decision, HumanError, LLMHuman, Oracle, RegexTokenizer, Written,
                          decision_from_logprobs,
                          clean_code, make_human, parse_decision)
from problems.datasets import load
from tests.servers import free_port, human_server, llama_server  # noqa: F401  (fixtures)


@pytest.fixture(scope="module")
def problem():
    return load("builtin")[0]


# ------------------------------------------------------------------ tokenizer
def test_regex_tokenizer_is_lossless_and_counts_words_and_punctuation():
    tok = RegexTokenizer()
    text = "def f(a, b):\n    return a  + b\t# sum\r\n\n"
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert [tok.pieces[i] for i in ids[:6]] == ["def", " f", "(", "a", ",", " b"]
    assert tok.encode("def") == ids[:1]  # the same piece, the same id


# ------------------------------------------------------------------ the oracle
async def test_oracle_replays_the_reference_in_ceil_tokens_over_k_writes(problem):
    h = make_human("oracle")
    ref = problem.reference
    n_tokens = len(RegexTokenizer().encode(ref))
    code, writes = "", 0
    while True:
        d = await h.decide(problem, code, "")
        if d.action == "finish":
            break
        assert d.action == "reject"  # an empty suggestion
        w = await h.write(problem, code, K_H)
        assert isinstance(w, Written) and 0 < w.tokens <= K_H
        code, writes = code + w.text, writes + 1
        assert ref.startswith(code)
        assert w.done == (code == ref)
    assert code == ref
    assert writes == math.ceil(n_tokens / K_H)


async def test_oracle_accepts_a_continuation_and_rejects_anything_else(problem):
    h = Oracle()
    ref = problem.reference
    code = ref[:40]
    assert (await h.decide(problem, code, ref[40:55])).action == "accept"
    assert (await h.decide(problem, code, ref[40:])).action == "accept"  # to the very end
    assert (await h.decide(problem, code, "")).action == "reject"
    assert (await h.decide(problem, code, ref[40:50] + "oops")).action == "reject"
    assert (await h.decide(problem, code, ref[41:55])).action == "reject"  # skips a character
    assert (await h.decide(problem, ref, "")).action == "finish"
    assert (await h.decide(problem, ref.rstrip(), "\n")).action == "finish"


async def test_oracle_with_a_given_text_and_one_that_left_it(problem):
    h = make_human("oracle", reference="print(1)\n")
    w = await h.write(problem, "", 2)
    assert (w.text, w.tokens, w.done) == ("print(", 2, False)
    w = await h.write(problem, "print(", 10)
    assert (w.text, w.tokens, w.done) == ("1)\n", 3, True)
    assert (await h.decide(problem, "print(2", "")).action == "finish"  # it cannot get back
    assert await h.write(problem, "print(2", 10) == Written("", 0, done=True)


@pytest.mark.slow
async def test_oracle_counts_with_a_hugging_face_tokenizer(test_models):
    p = load("builtin")[1]
    h = make_human("oracle", tokenizer=f"hf:{test_models.tokenizer}")
    code, writes = "", 0
    while (await h.decide(p, code, "")).action != "finish":
        w = await h.write(p, code, K_H)
        assert w.text and w.tokens <= K_H
        code, writes = code + w.text, writes + 1
    assert code == p.reference
    assert writes == math.ceil(len(h.tokenizer.encode(p.reference)) / K_H)


def test_registry():
    assert {"oracle", "llm"} <= set(HUMANS)
    with pytest.raises(HumanError, match="unknown human"):
        make_human("nobody")
    with pytest.raises(HumanError, match="oracle"):
        make_human("oracle", colour="blue")


# ------------------------------------------------------------------ parsing an answer
@pytest.mark.parametrize("raw, action, parsed", [
    ("Looks right.\nANSWER: accept", "accept", True),
    ("looks wrong\nanswer: Reject", "reject", True),
    ("**ANSWER:** **finish**", "finish", True),
    ("Thoughts...\n**Answer: `accept`**\n", "accept", True),
    ('ANSWER: "reject".', "reject", True),
    ("ANSWER: accept\nOn second thought...\nANSWER: reject", "reject", True),  # the last wins
    ("Final answer: finish", "finish", True),
    ("The decision is clear.\n\nAccept", "accept", True),  # a bare final word
    ("Hmm.\n*reject*", "reject", True),
    ("<think>ANSWER: finish</think>\nANSWER: accept", "accept", True),
    ("ANSWER: accept or reject", "reject", False),  # ambiguous
    ("I would accept this.", "reject", False),
    ("ANSWER: maybe", "reject", False),
    ("", "reject", False),
])
def test_parse_decision(raw, action, parsed):
    d = parse_decision(raw)
    assert (d.action, d.parsed, d.raw) == (action, parsed, raw)


def test_parse_decision_keeps_the_thoughts():
    d = parse_decision("It adds the loop header.\nNo bug.\nANSWER: accept")
    assert d.thoughts == "It adds the loop header.\nNo bug."


@pytest.mark.parametrize("reply, opened, text, closed", [
    ("x = 1", True, "x = 1", False),
    ("x):\n    return x\n```", True, "x):\n    return x", True),
    ("```", True, "", True),
    ("```python\nx = 1", True, "x = 1", False),  # a server that ignored the prefill
    ("```python\nx = 1\n```\nDone!", False, "x = 1", True),
    ("```python\ndef f():\n    pass", False, "    pass", False),  # repeated code is dropped
])
def test_clean_code(reply, opened, text, closed):
    assert clean_code(reply, "def f():\n" if "def" in reply else "", opened) == (text, closed)


def test_the_acceptor_sees_the_suggestion_as_a_diff(problem):
    messages = human_prompts.acceptor(problem, "a = 1\n", "b = 2\n")
    user = messages[-1]["content"]
    assert "+b = 2" in user and "ANSWER" in messages[0]["content"]
    assert problem.statement.strip()[:40] in user


# ------------------------------------------------------------------ an LLM human, real server
@pytest.mark.slow
async def test_llm_human_against_llama_cpp_server(llama_server, problem):  # noqa: F811
    # the test server holds 1024 tokens of context: a short statement
    problem = dataclasses.replace(problem, statement="Print the sum of two integers.", starter="")
    h = make_human("llm", model="memorizer", urls=[llama_server[0]], think_tokens=24, seed=1)
    d = await h.decide(problem, "import sys\n", "n = int(input())\n")
    assert isinstance(d, Decision) and d.action in ("accept", "reject", "finish")
    assert d.raw and (d.parsed or d.action == "reject")
    for prefill in (True, False):
        h.prefill = prefill
        w = await h.write(problem, "import sys\n", K_H)
        assert isinstance(w, Written) and w.tokens <= K_H
        assert len(RegexTokenizer().encode(w.text)) == w.tokens


@pytest.mark.slow
async def test_a_base_model_human_in_completion_mode_against_llama_cpp_server(human_server, problem):  # noqa: F811
    """No chat template: the appender continues the code block, the acceptor's answer comes from
    the next token's log-probabilities (the memorizer's are nonsense; what matters is the path),
    from the server empower-evals starts for a built-in human (no logits table), one a role."""
    problem = dataclasses.replace(problem, statement="Print the sum of two integers.", starter="")
    h = make_human("llm", model="memorizer", urls=[human_server[0]], decide_urls=[human_server[0]], mode="completion")
    d = await h.decide(problem, "import sys\n", "n = int(input())\n")
    assert d.action in ("accept", "reject", "finish") and json.loads(d.raw)  # the top tokens, kept
    assert d.parsed or d.action == "reject"
    w = await h.write(problem, "import sys\n", K_H)
    assert w.tokens <= K_H and len(RegexTokenizer().encode(w.text)) == w.tokens
    await h.aclose()


def test_a_base_models_answer_is_the_likeliest_answer_word():
    top = {" the": -0.5, " accept": -3.0, " Reject": -1.5, " fin": -4.0, " a": -0.1}
    d = decision_from_logprobs(top)
    assert d.action == "reject" and d.parsed  # " a" is too short to count as "accept"
    assert decision_from_logprobs({" accepted": -1.0, "\n": -0.1}).action == "reject"  # not a prefix
    assert not decision_from_logprobs({"\n": -0.1, " I": -1.0}).parsed
    assert decision_from_logprobs({" finish": -2.0, "acc": -2.5}).action == "finish"
    with pytest.raises(HumanError, match="unknown mode"):
        make_human("llm", urls=["http://127.0.0.1:9/v1"], mode="base")


def test_model_aliases():
    h = LLMHuman("gemma-3-27b", "http://127.0.0.1:9/v1")
    assert h.model == "google/gemma-3-27b-it"
    assert LLMHuman("my/model", "http://127.0.0.1:9/v1").model == "my/model"


# ------------------------------------------------------------------ failures
async def test_a_server_that_is_down_raises_after_the_retries(problem):
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    h = make_human("llm", urls=[url], attempts=3, base_delay=0.01, timeout=2)
    t = time.monotonic()
    with pytest.raises(HumanError, match="after 3 attempts.*Connection"):
        await h.decide(problem, "", "x")
    assert time.monotonic() - t < 5


class _Failing(BaseHTTPRequestHandler):
    status = 500
    requests: list[str] = []

    def do_POST(self):
        self.requests.append(self.path)
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = b'{"error": {"message": "boom"}}'
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def failing_server():
    def start(status: int):
        handler = type("Handler", (_Failing,), {"status": status, "requests": []})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/v1", handler.requests

    servers = []
    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


async def test_http_500_is_retried_then_raises(failing_server, problem):
    url, requests = failing_server(500)
    h = make_human("llm", urls=[url], attempts=4, base_delay=0.01)
    with pytest.raises(HumanError, match="after 4 attempts.*InternalServerError"):
        await h.write(problem, "", K_H)
    assert requests == ["/v1/chat/completions"] * 4


async def test_http_400_is_not_retried(failing_server, problem):
    url, requests = failing_server(400)
    h = make_human("llm", urls=[url], attempts=4, base_delay=0.01)
    with pytest.raises(HumanError, match="BadRequest"):
        await h.decide(problem, "", "x")
    assert len(requests) == 1


async def test_urls_are_used_round_robin(failing_server, problem):
    (a, ra), (b, rb) = failing_server(500), failing_server(500)
    h = make_human("llm", urls=[a, b], attempts=4, base_delay=0.0)
    with pytest.raises(HumanError):
        await h.decide(problem, "", "x")
    assert len(ra) == len(rb) == 2


async def test_the_acceptor_can_have_servers_of_its_own(failing_server, problem):
    """decide_urls: the acceptor's requests go there, the writer's to urls (each role's prompt
    prefix then stays in its own server's cache); every client is in h.clients."""
    (w, rw), (d, rd) = failing_server(400), failing_server(400)
    for mode, path in (("completion", "/v1/completions"), ("chat", "/v1/chat/completions")):
        rw.clear(), rd.clear()
        h = make_human("llm", urls=[w], decide_urls=[d], attempts=2, base_delay=0.0, mode=mode)
        with pytest.raises(HumanError):
            await h.decide(problem, "", "x")
        assert (rd, rw) == ([path], [])
        with pytest.raises(HumanError):
            await h.write(problem, "", K_H)
        assert (rd, rw) == ([path], [path])
        assert [str(c.base_url).rstrip("/") for c in h.clients] == [w, d]
        await h.aclose()
