"""The OpenAI-compatible HTTP backend against real servers on loopback.

    .venv/bin/python -m pytest tests/test_backend_openai.py -q

llama-cpp-python's own server (`python -m llama_cpp.server`) serves the memorizer GGUF; tests
that need it are marked slow (they need the test models: ~50 s to build the first time, then a
server start of about a second). Failure modes (refused connection, slow answer, HTTP 500, a
broken stream, a stalled stream) come from a stdlib HTTP server in a thread, so they are fast.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from coach.backends import load_backend
from coach.backends.openai_http import OpenAIBackend
from coach.specs import resolve
from coach.types import BackendError, Generation, Prompt, Request
from tests.models import split_probe
from tests.servers import free_port, llama_server  # noqa: F401  (a fixture)

SECRET = "sk-empower-test-0123456789"


def backend_at(url: str, **options) -> OpenAIBackend:
    return load_backend(resolve(f"openai:{url}#memorizer", config={}), **options)


def later(seconds: float, event: threading.Event) -> None:
    threading.Timer(seconds, event.set).start()


@pytest.fixture
def backend(llama_server):
    b = backend_at(llama_server[0])
    yield b
    b.close()


@pytest.fixture
def probes(test_models):
    """(prompt, expected next line) for every memorized file."""
    return [split_probe(path.read_text(encoding="utf-8")) for path in test_models.memorized]


def completion(prompt: str, **kw) -> Request:
    return Request(Prompt("completion", prompt), **{"max_tokens": 64, **kw})


def check_tokens(g: Generation) -> None:
    assert g.logprobs is not None, "llama.cpp's server streams log-probs: they must arrive"
    assert len(g.tokens) == len(g.logprobs)
    assert "".join(g.tokens) == g.text
    assert all(lp <= 0 for lp in g.logprobs)


@pytest.mark.slow
def test_greedy_completion_continues_each_memorized_file(backend, probes):
    for prompt, expected in probes:
        # every token is at least one byte, so this budget always reaches the end of the line
        g = backend.generate(completion(prompt, max_tokens=len(expected.encode())))
        assert g.text.startswith(expected), (prompt[-80:], expected, g.text)
        check_tokens(g)
        assert g.prompt_s > 0 and g.generate_s >= 0


@pytest.mark.slow
def test_max_tokens_and_stop_strings(backend, probes):
    prompt, expected = max(probes, key=lambda p: len(p[1]))
    g = backend.generate(completion(prompt, max_tokens=5))
    assert g.finish_reason == "length" and len(g.tokens) == 5
    check_tokens(g)

    g = backend.generate(completion(prompt, stop=("\n",)))
    assert (g.finish_reason, g.text) == ("stop", expected.rstrip("\n"))
    check_tokens(g)

    # A stop string that starts inside a token: the text ends there, the tokens are cut to match.
    stop = expected[len(expected) // 2:][:3]
    g = backend.generate(completion(prompt, stop=(stop, "\n")))
    assert (g.finish_reason, g.text) == ("stop", expected[:expected.index(stop)])
    check_tokens(g)


@pytest.mark.slow
def test_chat_endpoint_without_a_chat_template(backend, probes):
    # The memorizer's GGUF has no chat template: llama-cpp-python falls back to its "llama-2"
    # format (and ignores continue_final_message), so the answer is text, not necessarily code.
    prompt, _ = probes[0]
    messages = ({"role": "system", "content": "Continue the code."},
                {"role": "user", "content": prompt}, {"role": "assistant", "content": prompt})
    g = backend.generate(Request(Prompt("chat", "", messages=messages, prefill=prompt), max_tokens=16))
    assert g.finish_reason in ("stop", "length") and g.text
    check_tokens(g)


@pytest.mark.slow
def test_cancel_stops_the_stream_and_the_server(backend, probes, llama_server):
    prompt, _ = max(probes, key=lambda p: len(p[0]))
    before = llama_server[1].read_text().count("Disconnected from client")
    cancel = threading.Event()
    later(0.05, cancel)
    # greedy on a memorized file: hundreds of tokens to go, it does not stop by itself
    g = backend.generate(completion(prompt, max_tokens=800, cancel=cancel))
    assert cancel.is_set() and g.finish_reason == "cancelled"
    assert g.generate_s + g.prompt_s < 0.5
    check_tokens(g)
    # The closed connection reaches the server, which stops at its next token.
    deadline = time.monotonic() + 5
    while llama_server[1].read_text().count("Disconnected from client") == before:
        assert time.monotonic() < deadline, "the server did not notice the client leaving"
        time.sleep(0.05)
    assert backend.generate(completion(prompt, max_tokens=4)).finish_reason == "length"


@pytest.mark.slow
def test_count_tokens_asks_the_server(backend, test_models):
    from llama_cpp import Llama

    vocab = Llama(str(test_models.memorizer_gguf), vocab_only=True, verbose=False)
    text = "def fibonacci(n):\n    return n\n"
    assert backend.count_tokens(text) == len(vocab.tokenize(text.encode(), special=True))
    assert backend.count_tokens(text) == backend.count_tokens(text)


# ------------------------------------------------------------------ a stdlib server for failures

class Stub(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), StubHandler)
        self.mode = "500"
        self.delay = 0.0
        self.requests: list[tuple[str, dict, dict]] = []  # (path, headers, JSON body)
        self.disconnected_at: float | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def handle_error(self, request, client_address):
        pass  # writes to a connection the client dropped are expected here


class StubHandler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        stub: Stub = self.server
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        stub.requests.append((self.path, dict(self.headers), body))
        if not self.path.endswith("completions"):
            return self.send_error(404)
        if stub.mode == "slow":
            time.sleep(stub.delay)
        if stub.mode == "500":
            return self.reply(500, "application/json", b'{"error": {"message": "the model fell over"}}')
        if stub.mode == "echo":  # a careless proxy: the request's headers in its error page
            return self.reply(401, "text/plain", str(self.headers).encode())
        if stub.mode == "garbage":
            return self.reply(200, "text/event-stream", b"data: {this is not json\n\n")
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        chunk = {"choices": [{"index": 0, "text": "x", "finish_reason": None}]}
        self.wfile.write(f": ping\n\ndata: {json.dumps(chunk)}\n\n".encode())
        self.wfile.flush()
        if stub.mode == "trickle":  # a token every `delay` seconds, never ending
            while True:
                time.sleep(stub.delay)
                try:
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                except OSError:
                    stub.disconnected_at = time.monotonic()
                    return
        if stub.mode == "stall":  # then nothing: wait until the client closes the connection
            self.connection.recv(1)
            stub.disconnected_at = time.monotonic()
            return
        chunk = {"choices": [{"index": 0, "text": "", "finish_reason": "stop"}]}
        self.wfile.write(f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n".encode())

    def reply(self, status: int, content_type: str, body: bytes):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def stub():
    server = Stub()
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_what_is_sent_for_each_prompt_format(stub):
    stub.mode = "ok"
    b = backend_at(stub.url)
    g = b.generate(Request(Prompt("fim", "def f(", suffix="):\n"), max_tokens=7, stop=("\n",),
                           temperature=0.6, top_p=0.9, seed=3))
    assert (g.text, g.tokens, g.logprobs, g.finish_reason) == ("x", ("x",), None, "stop")
    path, _, body = stub.requests[-1]
    assert path == "/v1/completions"
    assert body == {"model": "memorizer", "prompt": "def f(", "suffix": "):\n", "stream": True,
                    "max_tokens": 7, "temperature": 0.6, "top_p": 0.9, "seed": 3, "stop": ["\n"],
                    "logprobs": 1, "stream_options": {"include_usage": True}}
    messages = ({"role": "user", "content": "x = "}, {"role": "assistant", "content": "x = "})
    b.generate(Request(Prompt("chat", "", messages=messages, prefill="x = "), max_tokens=4))
    path, _, body = stub.requests[-1]
    assert path == "/v1/chat/completions" and body["messages"] == list(messages)
    assert body["continue_final_message"] is True and body["add_generation_prompt"] is False
    assert body["logprobs"] is True and "stop" not in body and "suffix" not in body


def test_nothing_listening_is_a_quick_clear_error():
    url = f"http://127.0.0.1:{free_port()}/v1"
    start = time.monotonic()
    with pytest.raises(BackendError, match=f"cannot reach {url}"):
        backend_at(url).generate(completion("x = "))
    assert time.monotonic() - start < 2


def test_a_slow_server_times_out(stub):
    stub.mode, stub.delay = "slow", 3.0
    b = backend_at(stub.url, timeout=0.5)
    start = time.monotonic()
    with pytest.raises(BackendError, match="did not answer within 0.5 s"):
        b.generate(completion("x = "))
    assert time.monotonic() - start < 1.5


def test_a_server_trickling_tokens_is_cut_at_the_whole_requests_deadline(stub):
    """Each read comes within the timeout, but the answer never ends: the deadline is the
    request's, not each read's (it held a 3-second request for over 15 s)."""
    stub.mode, stub.delay = "trickle", 0.2
    b = backend_at(stub.url, timeout=1.0)
    start = time.monotonic()
    with pytest.raises(BackendError, match="did not finish its answer within 1 s"):
        b.generate(completion("x = "))
    assert time.monotonic() - start < 2
    time.sleep(0.5)
    assert stub.disconnected_at is not None  # the connection was dropped: the server stops


@pytest.mark.parametrize("url,warned", [("http://10.0.0.7:8000/v1", True), ("http://gpu-box:8000/v1", True),
                                        ("https://api.example.com/v1", False), ("http://127.0.0.1:8000/v1", False),
                                        ("http://localhost:8000/v1", False), ("http://[::1]:8000/v1", False)])
def test_a_key_over_plain_http_to_another_machine_is_warned_about(url, warned, monkeypatch):
    import warnings

    from coach.backends.openai_http import UnsafeKey

    monkeypatch.setenv("EMPOWER_API_KEY", SECRET)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        b = backend_at(url)
    b.close()
    mine = [w for w in caught if issubclass(w.category, UnsafeKey)]
    assert bool(mine) == warned
    assert all(SECRET not in str(w.message) and "https" in str(w.message) for w in mine)
    monkeypatch.delenv("EMPOWER_API_KEY")
    with warnings.catch_warnings(record=True) as caught:  # no key: nothing to leak
        warnings.simplefilter("always")
        backend_at(url).close()
    assert not [w for w in caught if issubclass(w.category, UnsafeKey)]


def test_http_500_names_the_status_and_the_key_stays_secret(stub, monkeypatch):
    monkeypatch.setenv("EMPOWER_API_KEY", SECRET)
    b = backend_at(stub.url)
    with pytest.raises(BackendError) as err:
        b.generate(completion("x = "))
    assert str(err.value) == "server error 500: the model fell over"
    assert stub.requests[-1][1]["Authorization"] == f"Bearer {SECRET}"
    assert SECRET not in str(err.value) and SECRET not in repr(err.value)
    assert SECRET not in repr(b) and SECRET not in str(b)


def test_a_key_echoed_back_by_the_server_is_masked(stub, monkeypatch):
    monkeypatch.setenv("EMPOWER_API_KEY", SECRET)
    stub.mode = "echo"
    with pytest.raises(BackendError, match=r"server error 401: .*\*\*\*.*EMPOWER_API_KEY") as err:
        backend_at(stub.url).generate(completion("x = "))
    assert SECRET not in str(err.value)


def test_a_malformed_stream_is_a_clear_error(stub):
    stub.mode = "garbage"
    with pytest.raises(BackendError, match="malformed stream from"):
        backend_at(stub.url).generate(completion("x = "))


def test_cancel_wakes_a_stalled_read_and_closes_the_connection(stub):
    stub.mode = "stall"
    b, cancel = backend_at(stub.url), threading.Event()
    later(0.05, cancel)
    g = b.generate(completion("x = ", cancel=cancel))
    returned = time.monotonic()
    assert (g.text, g.finish_reason) == ("x", "cancelled")
    assert g.prompt_s + g.generate_s < 0.25
    deadline = returned + 1
    while stub.disconnected_at is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert stub.disconnected_at is not None and stub.disconnected_at - returned < 0.2


def test_cancel_while_waiting_for_headers_returns_at_once(stub):
    stub.mode, stub.delay = "slow", 2.0
    b, cancel = backend_at(stub.url), threading.Event()
    later(0.05, cancel)
    start = time.monotonic()
    g = b.generate(completion("x = ", cancel=cancel))
    assert (g.text, g.finish_reason) == ("", "cancelled")
    assert time.monotonic() - start < 0.3


def test_an_already_cancelled_request_sends_nothing(stub):
    cancel = threading.Event()
    cancel.set()
    assert backend_at(stub.url).generate(completion("x = ", cancel=cancel)).finish_reason == "cancelled"
    assert stub.requests == []


def test_count_tokens_falls_back_to_an_estimate_and_stops_asking(stub):
    b = backend_at(stub.url)
    assert b.count_tokens("a" * 40) == 10
    asked = len(stub.requests)
    assert asked >= 1
    assert b.count_tokens("b" * 40) == 10 and len(stub.requests) == asked


def test_spec_loads_this_backend_and_it_renders_no_chat_itself():
    b = load_backend(resolve("openai:http://127.0.0.1:9/v1#memorizer", config={}))
    assert isinstance(b, OpenAIBackend) and b.spec.name == "memorizer"
    assert b.has_chat_template() and b.fim_tokens() is None
    with pytest.raises(BackendError):
        b.render_chat([{"role": "user", "content": "x"}])
    b.close()
