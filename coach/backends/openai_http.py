"""Any OpenAI-compatible server (vLLM, llama.cpp's server, llama-cpp-python's, Ollama) over HTTP.

httpx rather than the `openai` package: both end in the same httpx stream, and neither can
interrupt a read that is blocked waiting for the next token. What can is shutting the socket
down (close() from another thread does not wake a blocked recv on Linux, nor send the FIN that
tells the server to stop; shutdown() does both at once). So each request streams on a worker
thread while generate() waits on the caller's cancel flag; on cancel it shuts the connection
down, returns what arrived, and the server sees the client gone and stops generating.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import warnings

import httpx

from coach.specs import ModelSpec
from coach.types import BackendError, Generation, Request

POLL_S = 0.02  # how often a waiting generate() looks at the cancel flag
MAX_CACHED_COUNTS = 4096

# Token counting endpoints, tried in order on the first count_tokens(); the first that answers
# is kept. (path from the server root, body, how to read the count) Beware: llama-cpp-python's
# server (default --interrupt_requests True) cuts a streaming generation short for any request
# that needs the model, tokenizing included; such a generation comes back "cancelled".
TOKENIZERS = (
    ("/extras/tokenize/count", lambda text, model: {"input": text, "model": model},
     lambda answer: answer["count"]),  # llama-cpp-python
    ("/tokenize", lambda text, model: {"model": model, "prompt": text},
     lambda answer: answer["count"]),  # vLLM
    ("/tokenize", lambda text, model: {"content": text},
     lambda answer: len(answer["tokens"])),  # llama.cpp's llama-server
)


class OpenAIBackend:
    def __init__(self, spec: ModelSpec, timeout: float = 30.0, connect_timeout: float = 5.0):
        if not spec.url or not spec.name:
            raise BackendError(f"{spec.raw!r}: an OpenAI-compatible model needs a URL and a served name")
        self.spec = spec
        self.url = _public(spec.url.rstrip("/"))  # what messages show: never credentials
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        key = os.environ.get(spec.api_key_env) if spec.api_key_env else None
        if key and _plain_http_elsewhere(spec.url):
            warnings.warn(f"the API key in ${spec.api_key_env} goes to {self.url} over plain http, readable on "
                          "the way: use https", UnsafeKey, stacklevel=2)
        # The key lives only in the client's default headers: not on self, not in any message.
        self._client = httpx.Client(
            base_url=spec.url.rstrip("/") + "/", timeout=httpx.Timeout(timeout, connect=connect_timeout),
            headers={"Authorization": f"Bearer {key}"} if key else {})
        self._root = spec.url.rstrip("/").removesuffix("/v1")  # tokenize endpoints live at the root
        self._tokenizer: tuple | bool | None = None  # None: not probed yet; False: the server has none
        self._counts: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"OpenAIBackend({self.spec.name!r} @ {self.url})"

    def has_chat_template(self) -> bool:
        return True  # the server applies its own template to messages

    def render_chat(self, messages: list[dict]) -> str:
        raise BackendError(f"{self.url} renders chat itself: send the chat format's messages")

    def fim_tokens(self) -> tuple[str, str, str] | None:
        return None  # the server's FIM markers are unknown here; FIM goes through `suffix`

    def count_tokens(self, text: str) -> int:
        if text not in self._counts:
            n = self._server_count(text)
            if n is None:
                return len(text) // 4  # an estimate: not cached, the server may answer next time
            if len(self._counts) >= MAX_CACHED_COUNTS:
                self._counts.clear()
            self._counts[text] = n
        return self._counts[text]

    def _server_count(self, text: str) -> int | None:
        if self._tokenizer is False:
            return None
        for probe in [self._tokenizer] if self._tokenizer else TOKENIZERS:
            path, body, read = probe
            try:
                answer = self._client.post(self._root + path, json=body(text, self.spec.name),
                                           timeout=min(self.timeout, 5.0))
                answer.raise_for_status()
                n = int(read(answer.json()))
            except httpx.TransportError:
                return None  # down or slow right now: estimate this time, probe again later
            except (httpx.HTTPStatusError, ValueError, KeyError, TypeError):
                continue  # not this server's dialect
            self._tokenizer = probe
            return n
        if self._tokenizer is None:
            self._tokenizer = False  # none answered: estimate from now on
        return None

    def generate(self, request: Request) -> Generation:
        started = time.perf_counter()
        cancel = request.cancel
        if cancel is not None and cancel.is_set():
            return Generation("", finish_reason="cancelled")
        path, body = self._body(request)
        stream = _Stream(self, path, body, cancel, chat=path == "chat/completions")
        threading.Thread(target=stream.run, name="empower-openai-stream", daemon=True).start()
        # httpx's timeout is per read: a server trickling a token now and then would hold a
        # request for ever. `timeout` is also the whole request's deadline.
        deadline = started + self.timeout
        try:
            while not stream.done.wait(POLL_S):
                if cancel is not None and cancel.is_set():
                    break
                if time.perf_counter() > deadline:
                    began = stream.first_at is not None  # a token came, but not the end
                    stream.error = BackendError(f"{self.url} did {'not finish its answer' if began else 'not answer'} "
                                                f"within {self.timeout:g} s")
                    stream.overdue = True
                    break
        finally:
            if not stream.done.is_set():
                stream.abort()  # cancelled, overdue, or the caller was interrupted: drop the connection
        return stream.result(started)

    def _body(self, request: Request) -> tuple[str, dict]:
        prompt = request.prompt
        body = {"model": self.spec.name, "stream": True, "max_tokens": request.max_tokens,
                "temperature": request.temperature, "top_p": request.top_p, "seed": request.seed,
                "stream_options": {"include_usage": True}}
        if request.stop:
            body["stop"] = list(request.stop)
        if prompt.format == "chat":
            if not prompt.messages:
                raise BackendError("a chat prompt needs messages")
            # The last message is the assistant turn prefilled with the code: continue it rather
            # than start a new turn (vLLM honours these; others ignore them and the model
            # re-types the code, which extraction handles).
            body.update(messages=list(prompt.messages), logprobs=True, top_logprobs=1,
                        continue_final_message=True, add_generation_prompt=False)
            return "chat/completions", body
        body.update(prompt=prompt.text, logprobs=1)
        if prompt.format == "fim":
            body["suffix"] = prompt.suffix
        return "completions", body

    def close(self) -> None:
        self._client.close()


class _Stream:
    """One streamed request, read on a worker thread; generate() reads the result."""

    def __init__(self, backend: OpenAIBackend, path: str, body: dict, cancel, chat: bool):
        self.backend, self.path, self.body, self.cancel, self.chat = backend, path, body, cancel, chat
        self.done = threading.Event()
        self.lock = threading.Lock()  # the worker appends while a cancelled generate() reads
        self.response: httpx.Response | None = None
        self.aborted = False
        self.pieces: list[str] = []  # the text of each chunk
        self.lp: list[tuple[str, float | None]] = []  # (token, log-prob) as the server sent them
        self.lp_complete = True  # every chunk with text came with its log-probs
        self.finish: str | None = None
        self.saw_done = False
        self.usage: dict = {}
        self.first_at: float | None = None
        self.error: BackendError | None = None
        self.overdue = False  # past the request's deadline: an error, not a cancel

    def run(self) -> None:
        b = self.backend
        try:
            with b._client.stream("POST", self.path, json=self.body) as response:
                self.response = response
                if response.status_code >= 400:
                    response.read()
                    raise BackendError(_status_message(response, b.spec.api_key_env))
                for line in response.iter_lines():
                    if self.aborted or (self.cancel is not None and self.cancel.is_set()):
                        return  # leaving the block closes the unfinished response: the connection goes
                    if self._line(line):
                        break
        except BackendError as exc:
            self.error = exc
        except httpx.ConnectTimeout:
            self.error = BackendError(f"cannot reach {b.url} (no connection within {b.connect_timeout:g} s)")
        except httpx.ConnectError as exc:
            self.error = BackendError(f"cannot reach {b.url} ({_short(str(exc) or type(exc).__name__)})")
        except httpx.TimeoutException:
            self.error = BackendError(f"{b.url} did not answer within {b.timeout:g} s")
        except httpx.RemoteProtocolError as exc:
            self.error = BackendError(f"{b.url} broke off the answer ({_short(str(exc) or type(exc).__name__)})")
        except Exception as exc:  # never a traceback from a thread into the editor's screen
            self.error = BackendError(f"{b.url}: {type(exc).__name__}: {_short(str(exc) or type(exc).__name__)}")
        finally:
            self.done.set()

    def abort(self) -> None:
        self.aborted = True  # set before looking at the response: run() checks it after setting it
        response = self.response
        stream = response.extensions.get("network_stream") if response is not None else None
        sock = stream.get_extra_info("socket") if stream is not None else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes the worker's read; the server sees a FIN
            except OSError:
                pass
        # Still waiting for headers (no socket known yet): the worker aborts when they arrive.

    def _line(self, line: str) -> bool:
        """Take one line of server-sent events; True at the end of the stream."""
        if not line or line.startswith(":"):
            return False  # event separator or keep-alive comment
        field, _, value = line.partition(":")
        if field in ("event", "id", "retry"):
            return False
        value = value.removeprefix(" ")
        if field != "data":
            raise BackendError(f"malformed stream from {self.backend.url}: {line[:80]!r}")
        if value == "[DONE]":
            self.saw_done = True
            return True
        try:
            self._chunk(json.loads(value))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise BackendError(f"malformed stream from {self.backend.url}: {value[:80]!r}") from None
        return False

    def _chunk(self, chunk: dict) -> None:
        if chunk.get("error"):
            raise BackendError(f"server error: {_short(_error_text(chunk))}")  # vLLM, mid-stream
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            text = (choice.get("delta") or {}).get("content") if self.chat else choice.get("text")
            lp = choice.get("logprobs") or {}
            if self.chat:  # {"content": [{"token", "logprob", ...}]}
                pairs = [(e["token"], e["logprob"]) for e in lp.get("content") or ()]
            else:  # {"tokens": [...], "token_logprobs": [...]}
                pairs = list(zip(lp.get("tokens") or (), lp.get("token_logprobs") or ()))
            with self.lock:
                if text:
                    if self.first_at is None:
                        self.first_at = time.perf_counter()
                    self.pieces.append(text)
                    self.lp_complete &= bool(pairs)
                self.lp.extend(pairs)
            self.finish = choice.get("finish_reason") or self.finish

    def result(self, started: float) -> Generation:
        ended = time.perf_counter()
        cancelled = self.aborted or (self.cancel is not None and self.cancel.is_set() and self.finish is None)
        if self.error is not None and (self.overdue or not cancelled):
            raise self.error
        if not cancelled and self.finish is None and not self.saw_done:
            raise BackendError(f"{self.backend.url} ended the stream before the answer was complete")
        with self.lock:
            text = "".join(self.pieces)
            aligned = _align(text, self.lp) if self.lp_complete else None
            tokens, logprobs = aligned or (tuple(p for p in self.pieces if p), None)
        # [DONE] without a finish reason: llama-cpp-python cut this request short for another one
        finish = "cancelled" if cancelled or self.finish is None else (
            "length" if self.finish == "length" else "stop")
        prompt_tokens = int(self.usage.get("prompt_tokens") or 0)
        cached = int((self.usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
        first = self.first_at or ended
        return Generation(text=text, tokens=tokens, logprobs=logprobs, finish_reason=finish,
                          prompt_tokens=prompt_tokens, evaluated_tokens=max(prompt_tokens - cached, 0),
                          prompt_s=first - started, generate_s=ended - first)


def _align(text: str, pairs: list[tuple[str, float | None]]):
    """Tokens and log-probs that spell exactly `text`, or None when they do not match it.

    A stop string can end the text inside a token, and llama-cpp-python still reports tokens
    that reach into the stop string: keep the tokens up to the end of the text, cutting the
    last one there (its log-prob is the whole token's, a slight overestimate of the NLL)."""
    kept, pos = [], 0
    for token, value in pairs:
        if pos >= len(text):
            break
        piece = text[pos:pos + len(token)]
        if not token.startswith(piece) or value is None:
            return None
        kept.append((piece, min(float(value), 0.0)))
        pos += len(piece)
    if pos != len(text):
        return None
    return tuple(p for p, _ in kept), tuple(v for _, v in kept)


class UnsafeKey(UserWarning):
    """An API key about to travel unencrypted to another machine."""


def _plain_http_elsewhere(url: str) -> bool:
    """http:// to a host other than this machine (loopback is fine: nothing leaves it)."""
    import ipaddress
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme != "http":
        return False
    host = (parts.hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True  # a name: it may resolve anywhere


def _status_message(response: httpx.Response, key_env: str) -> str:
    try:
        detail = _error_text(response.json())
    except ValueError:
        detail = response.text
    key = response.request.headers.get("Authorization", "").removeprefix("Bearer ")
    if key:  # a server or proxy that echoes the request back must not put the key on screen
        detail = detail.replace(key, "***")
    hint = f" (is ${key_env} set to the server's key?)" if response.status_code in (401, 403) else ""
    return f"server error {response.status_code}: {_short(detail) or response.reason_phrase}{hint}"


def _error_text(answer) -> str:
    """The message in an error body: OpenAI/vLLM {"error": {"message"}}, FastAPI {"detail"}."""
    if isinstance(answer, dict):
        for key in ("error", "detail", "message", "msg"):
            if answer.get(key):
                return _error_text(answer[key])
    if isinstance(answer, list) and answer:
        return _error_text(answer[0])  # FastAPI validation errors: the first says enough
    return str(answer)


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _public(url: str) -> str:
    """The URL without user:password@, for messages."""
    parsed = httpx.URL(url)
    return str(parsed.copy_with(userinfo=b"")) if parsed.userinfo else url
