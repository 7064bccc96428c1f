"""Prompt formats (one per model, used end to end) and extraction of the suggestion.

- `completion`: the code before the cursor, as it is; with the model's own fill-in-the-middle
  markers (prefix, suffix, middle) when it has them and there is code after the cursor.
- `chat`: the paper's protocol: a system message, two short few-shot exchanges, the code so
  far in a user turn, and the assistant turn prefilled with that code, so that the model only
  continues it.

Long files are cut to a window that ends at the cursor and starts at a line boundary that
moves in steps of a quarter window: between steps the prompt's start does not change, so the
llama.cpp KV cache keeps serving every keystroke. The window is WINDOW_CHARS, or less where a
model's context cannot hold that much (`fitted_chars`). The editor, the benchmark, the labeller
and the trainer all cut code with `window` at the size `fitted_chars` gives: what is labelled
and trained is what is served.
"""

from __future__ import annotations

import inspect
import re
import textwrap
from typing import Callable

from coach.types import Context, Prompt

FORMATS = ("completion", "chat")
FENCE = "```"
SYSTEM = ("You are a pair programmer sitting next to a person writing Python. You see their code "
          "up to the cursor. Continue it exactly where it stops with what they would most likely "
          "type next. Write only code, in a python code block, and stop where the next step is "
          "the person's own decision.")
# Two short exchanges that show the shape of an answer: the same code, continued.
FEW_SHOT = (
    ("def mean(xs):\n    if not xs:\n        return 0.0\n",
     "    return sum(xs) / len(xs)\n"),
    ("import sys\n\n\ndef main():\n    n = int(sys.stdin.readline())\n    nums = ",
     "list(map(int, sys.stdin.readline().split()))\n"),
)


WINDOW_CHARS = 8000  # code before the cursor in a prompt, at most (about 2.3k tokens of Python)


def window_sample() -> str:
    """Python code to size a model's window on (`fitted_chars`) before any real file is seen: the
    standard library's textwrap, the same for a given Python."""
    return inspect.getsource(textwrap)[:WINDOW_CHARS]


def fitted_chars(count_tokens: Callable[[str], int], room: int, sample: str | None = None,
                 max_chars: int = WINDOW_CHARS) -> int:
    """The window, in characters, for a model that has `room` tokens for the code: max_chars, or
    the characters of the sample's kind of code that fill 90% of the room (a margin for code
    denser than the sample)."""
    sample = window(sample if sample is not None else window_sample(), max_chars)
    chars_per_token = len(sample) / max(1, count_tokens(sample))
    return max(1, min(max_chars, int(0.9 * chars_per_token * room)))


def code_room(n_ctx: int, answer_tokens: int) -> int:
    """Tokens of a completion prompt's code: the context less the answer, BOS and a margin."""
    return n_ctx - answer_tokens - 8


def grid_cut(length: int, room: int) -> int:
    """How much of the start of `length` characters or tokens to drop so that at most `room`
    remain: rounded up to a grid of a quarter of the room, so that the next keystrokes cut at the
    same place and a KV cache of the prompt's start still serves them (a cut that moved with every
    keystroke would not). The one home of the editor's window: the prompt's characters
    (`window`), the backends' tokens (`coach.backends.fit_to_context`), the labeller's states."""
    if length <= room:
        return 0
    step = max(1, room // 4)
    return -(-(length - room) // step) * step


def window(prefix: str, max_chars: int) -> str:
    """The end of `prefix`, at most max_chars long, starting at a line boundary on the grid."""
    cut = grid_cut(len(prefix), max_chars)
    if not cut:
        return prefix
    line_start = prefix.find("\n", cut) + 1
    return prefix[line_start:] if 0 < line_start < len(prefix) else prefix[cut:]


def fenced(code: str) -> str:
    """Code as the chat framing shows it: in an open python block (the user's turns, the prefill)."""
    return f"{FENCE}python\n{code}"


def chat_messages(code: str) -> list[dict]:
    messages = [{"role": "system", "content": SYSTEM}]
    for before, after in FEW_SHOT:
        messages.append({"role": "user", "content": fenced(before) + f"\n{FENCE}"})
        messages.append({"role": "assistant", "content": fenced(before + after) + FENCE})
    messages.append({"role": "user", "content": fenced(code) + f"\n{FENCE}"})
    return messages


def related_head(related: tuple[str, ...], max_chars: int) -> str:
    """The other files' chunks that go ahead of the code: whole chunks, at most a quarter of the
    window, so the file's own code keeps the rest."""
    head = ""
    for chunk in related:
        if len(head) + len(chunk) > max_chars // 4:
            break
        head += chunk
    return head


def build(ctx: Context, fmt: str, backend, max_chars: int = WINDOW_CHARS) -> Prompt:
    """The prompt for `ctx` in format `fmt`, rendered for `backend` where it renders itself.
    Chunks of other files (`ctx.related`) go ahead of the code in the completion formats; the
    chat framing shows the file alone."""
    head = related_head(ctx.related, max_chars) if fmt != "chat" else ""
    code = window(ctx.prefix, max_chars - len(head))
    if fmt == "chat":
        messages = chat_messages(code)
        prefill = fenced(code)
        text = ""
        if backend.spec.kind != "openai":  # local models: apply the model's own chat template
            text = backend.render_chat(messages) + prefill
        return Prompt("chat", text, tuple(messages) + ({"role": "assistant", "content": prefill},), prefill)
    if fmt != "completion":
        raise ValueError(f"unknown prompt format {fmt!r}; use one of {', '.join(FORMATS)}")
    fim = backend.fim_tokens()
    suffix = ctx.suffix[:max_chars // 2]
    if fim and suffix.strip():
        pre, suf, mid = fim
        return Prompt("fim", f"{pre}{head}{code}{suf}{suffix}{mid}", suffix=suffix)
    return Prompt("completion", head + code)


OPEN_FENCE = re.compile(r"\s*```[\w+-]*[ \t]*\n")
LABELLED_FENCE = re.compile(r"\n?[ \t]*```[A-Za-z][\w+-]*[ \t]*\n")  # ```python: opens, never closes
PROSE = re.compile(r"^(Sure|Here|I |I'|The |This |To |You |Certainly|Of course|Sorry|As an)|[A-Za-z]+ [a-z]+ [a-z]+ [a-z]+.*[.!?:]$")


def _fence_after_prose(text: str):
    """A chat answer like "Sure! Here is the code:\n```python\n...": the code block, if the
    text before it is prose."""
    m = LABELLED_FENCE.search(text)
    if m and m.start() > 0 and all(_is_prose(line) or not line.strip() for line in text[:m.start()].split("\n")):
        return m
    return None


def _is_prose(line: str) -> bool:
    """An English sentence rather than code (no code is written like this)."""
    line = line.strip()
    return bool(line) and not re.search(r"[=(){}\[\]#]|^(def|class|return|import|from|for|if|while) ", line) \
        and bool(PROSE.search(line))


def extract(text: str, prompt: Prompt, ctx: Context) -> tuple[int, int, str]:
    """The span of `text` (a model's raw output) to show: (start, end) character offsets, and
    when the span is empty, why.

    Drops a code fence a chat model opens again and the code it re-types, cuts at the closing
    fence, ends at the line's end when the cursor is mid-line, and never repeats what follows
    the cursor."""
    start, end = 0, len(text)
    if prompt.format == "chat":
        opened = OPEN_FENCE.match(text) or _fence_after_prose(text)
        if opened:  # the model started a new answer instead of continuing the prefill
            start = opened.end()
        elif _is_prose(text.split("\n", 1)[0]):
            return 0, 0, "the model answered in prose, not code"
        code = prompt.prefill.removeprefix(f"{FENCE}python\n")
        for seen in (code, code.lstrip()):
            if seen and text.startswith(seen, start):
                start += len(seen)
                break
        close = text.find(FENCE, start)
        if close >= 0:
            end = close
            while end > start and text[end - 1] == "\n":  # the fence's own line break
                end -= 1
    if ctx.mid_line:
        newline = text.find("\n", start, end)
        if newline >= 0:
            end = newline
    if not text[start:end].strip():
        return start, start, "blank"
    end = start + _without_suffix_overlap(text[start:end], ctx.suffix)
    if not text[start:end].strip():
        return start, start, "repeats the code after the cursor"
    return start, end, ""


def settled(text: str, prompt: Prompt) -> bool:
    """Whether more generated text can no longer move where `extract` starts the suggestion:
    a chat answer's first non-blank line is complete, or already holds a character no prose
    has (then it is code: neither a fence nor prose can start there any more), and a copy of
    the code the model may be typing again is complete or already different."""
    if prompt.format != "chat":
        return True
    first = re.search(r"\S[^\n]*(\n)?", text)
    if first is None:
        return False
    line = first.group(0).rstrip("\n")
    if first.group(1) is None and (line.startswith("`") or not re.search(r"[=(){}\[\]#]", line)):
        return False
    opened = OPEN_FENCE.match(text) or _fence_after_prose(text)
    rest = text[opened.end() if opened else 0:]
    code = prompt.prefill.removeprefix(f"{FENCE}python\n")
    return not any(seen and len(rest) < len(seen) and seen.startswith(rest) for seen in (code, code.lstrip()))


def _without_suffix_overlap(shown: str, suffix: str) -> int:
    """Length of `shown` once the part that the code after the cursor already has is dropped
    (a suggestion `a + b)` before a suffix `)` becomes `a + b`)."""
    first = suffix.split("\n", 1)[0]
    if first.strip() and shown.strip() and first.strip().startswith(shown.strip()):
        return 0  # it would only repeat what is there
    for k in range(min(len(shown), len(suffix)), 0, -1):
        if shown.endswith(suffix[:k]) and suffix[:k].strip():
            return len(shown) - k
    return len(shown)
