"""The texts the LLM human reads: one prompt to write code (the appender), one to judge a
suggestion (the acceptor). Written for Empower; they follow the paper's protocol (Appendix D.3),
not its wording.
"""

from __future__ import annotations

import difflib

APPENDER_SYSTEM = """\
You are a skilled Python programmer solving a programming problem by typing a program into an \
editor, a few words at a time. You solve the problem once: do not start a second version of a \
function you already began, and do not write tests or sample outputs. When the program is \
complete, close the code block."""

APPENDER_USER = """\
## Problem
{statement}

## Your program so far
```python
{code}
```

## What to do
Continue the program from exactly where it stops: reply with a ```python block holding ONLY the \
next characters to type (at most a few tokens), not the code above. What you write is appended \
verbatim, so keep whitespace and newlines exact. If the program is already complete, reply with \
an empty block."""

ACCEPTOR_SYSTEM = """\
You are a skilled Python programmer solving a programming problem in an editor. An assistant \
sometimes proposes text to append to your program. Code already written cannot change: judge \
ONLY the proposed addition.

Accept it when it does not introduce a bug and moves the program toward a correct solution or \
makes it better, even if it is short or unfinished (you keep writing after it). Reject it when \
it is wrong, introduces a bug or sets you back. Finish when your program as it stands (without \
the proposal) is complete and you are confident it is correct: it is then run on the tests and \
you write nothing more.

First write your reasoning in a few sentences, without writing new code. Then end with one line, \
exactly one of:
ANSWER: accept
ANSWER: reject
ANSWER: finish"""

ACCEPTOR_USER = """\
## Problem
{statement}

## Your program so far
```python
{code}
```

## Your program with the assistant's proposal appended
```python
{proposed}
```

## The change, as a diff
```diff
{diff}
```

Think about whether the proposal is right, then give your ANSWER line."""


def diff(code: str, suggestion: str) -> str:
    """A unified diff of the program before and after the suggestion is appended."""
    before, after = code.splitlines(keepends=True), (code + suggestion).splitlines(keepends=True)
    lines = difflib.unified_diff(before, after, "program", "program+suggestion", n=3)
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
                   for line in lines).rstrip("\n")


def statement(problem) -> str:
    """The problem as the human reads it: the statement, then the starter code when there is one."""
    if problem.starter.strip():
        return f"{problem.statement.rstrip()}\n\nStarter code:\n```python\n{problem.starter.rstrip()}\n```"
    return problem.statement.rstrip()


def appender(problem, code: str, prefill: bool) -> list[dict]:
    messages = [{"role": "system", "content": APPENDER_SYSTEM},
                {"role": "user", "content": APPENDER_USER.format(statement=statement(problem), code=code)}]
    if prefill:  # the answer starts inside the code block, right after the code so far
        messages.append({"role": "assistant", "content": f"```python\n{code}"})
    return messages


def acceptor(problem, code: str, suggestion: str) -> list[dict]:
    user = ACCEPTOR_USER.format(statement=statement(problem), code=code, proposed=code + suggestion,
                                diff=diff(code, suggestion))
    return [{"role": "system", "content": ACCEPTOR_SYSTEM}, {"role": "user", "content": user}]


# ------------------------------------------------------------------ a base model (no chat template)
# A pretrained model continues text: the appender's prompt ends inside the code block, so its
# continuation is the next code; the acceptor's ends on "Decision:", and the answer is read from
# the probabilities of the three words that could come next (no reasoning is asked for: a base
# model's reasoning is text it makes up, not a step it relies on).

COMPLETION_HEAD = """\
# Problem
{statement}

"""

APPENDER_COMPLETION = COMPLETION_HEAD + """\
# A correct Python solution
```python
{code}"""

ACCEPTOR_COMPLETION = COMPLETION_HEAD + """\
# A careful programmer's program so far
```python
{code}
```

# An assistant proposes to append this
```python
{suggestion}
```

# The programmer accepts a proposal that is correct and moves the program forward, rejects a wrong \
one, and finishes when the program so far is already complete and correct.
Decision (accept, reject or finish):"""


def appender_completion(problem, code: str) -> str:
    return APPENDER_COMPLETION.format(statement=statement(problem), code=code)


def acceptor_completion(problem, code: str, suggestion: str) -> str:
    return ACCEPTOR_COMPLETION.format(statement=statement(problem), code=code, suggestion=suggestion)
