"""Secrets in a person's code, found before anything is learnt from it: a secret that reaches
training can come back later as ghost text.

Two finders, the first hit at a place winning:
- our own patterns, first: the tokens whose shape is known (cloud and API keys), string literals
  assigned to a secret's name (`password = "..."`, in any language), passwords in comments, and
  unquoted values in config files (`.env`, YAML, INI, TOML);
- detect-secrets (Yelp's scanner, with its false-positive filters): cloud storage keys, basic
  auth in URLs, JWTs, Slack webhooks, GitLab, PyPI, npm and SendGrid tokens, private keys,
  keywords, and high-entropy strings (hex and base64 literals), where ours are silent.
`find_secrets` says where and what (never the value); `redact_secrets` replaces each value.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from pathlib import PurePosixPath

# (kind, needles, pattern): a pattern runs only on a text holding one of its needles, lowercased
# (a substring test is ~20x faster than a regex scan); its group "value", where there is one, is
# what redaction replaces, else the whole match.
_TOKENS: tuple[tuple[str, tuple[str, ...], re.Pattern[str]], ...] = (
    # the whole block where its END follows (keys are < 16 kB), else the BEGIN line alone
    ("private key", ("private key",), re.compile(
        r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?-----"
        r"(?:(?:(?!-----)[\s\S]){0,16000}-----END [A-Z ]*PRIVATE KEY(?: BLOCK)?-----)?")),
    ("AWS access key", ("akia", "asia"), re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("AWS secret key", ("aws",), re.compile(r"(?i)aws_?secret_?(?:access_?)?key[\"']?[ \t]*[:=][ \t]*[\"']?"
                                           r"(?P<value>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])")),
    ("GitHub token", ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
     re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})")),
    ("Slack token", ("xox",), re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}")),
    ("Anthropic key", ("sk-ant-",), re.compile(r"\bsk-ant-[A-Za-z0-9_-]{20,}")),
    ("OpenAI key", ("sk-",),  # random: digits and both cases, not a slug such as sk-learn-...
     re.compile(r"\bsk-(?=[A-Za-z0-9_-]*[0-9])(?=[A-Za-z0-9_-]*[A-Z])(?=[A-Za-z0-9_-]*[a-z])[A-Za-z0-9_-]{20,}")),
    ("Google API key", ("aiza",), re.compile(r"\bAIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])")),
    ("Hugging Face token", ("hf_",), re.compile(r"\bhf_[A-Za-z0-9]{34,}\b")),
    ("Stripe key", ("k_live_",), re.compile(r"\b[rs]k_live_[A-Za-z0-9]{16,}")),
    # header.payload.signature, whole (detect-secrets' own match can stop before the signature)
    ("JSON web token", ("eyj",), re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")),
    ("Telegram bot token", (":aa",), re.compile(r"\b\d{8,10}:AA[A-Za-z0-9_-]{33}(?![A-Za-z0-9_-])")),
    # a comment's "password is X" or "pwd: X", X a whole word of letters and digits (a comment
    # that quotes code, `password: SecretStr` or get_password(), is not one)
    ("password in a comment", ("pass", "pwd"), re.compile(
        r"(?im)(?:#|//|--|/\*|^[ \t]*;)[^\n]*?\b(?:password|passwd|passphrase|pwd)\b[ \t]*(?:is|=|:)[ \t]*"
        r"(?P<value>(?=[^\s]*\d)(?=[^\s]*[A-Za-z])[^\s'\"`()]{6,})(?=\s|$)")),
)
# `name = "v"`, `NAME: str = 'v'`, `"name": "v"`, `f(name="v")`, `cfg["name"] = "v"`, `name := "v"`:
# a name ending in a secret's word, then a string literal (never a call such as os.environ[...]).
_ASSIGNMENT = re.compile(
    r"""(?<![\w.-])["']?(?P<name>[\w.-]*?(?:password|passwd|passphrase|secret|token|key|credentials?))"""
    r"""["']?\]?(?:[ \t]*:[ \t]*[A-Za-z_][\w\[\]., |]*?)?[ \t]*(?::=|=|:)[ \t]*[rbuf]{0,2}"""
    r"""(?:"(?P<v1>[^"\n]*)"|'(?P<v2>[^'\n]*)')""", re.I)
_PASSWORD_NAMES = ("password", "passwd", "passphrase")
_TOKEN_NAMES = ("secret", "token", "apikey", "accesskey", "secretkey", "privatekey", "authkey",
                "credential", "credentials")
_PLACEHOLDERS = {"changeme", "password", "passwd", "secret", "token", "apikey", "example", "dummy", "test",
                 "testing", "placeholder", "none", "null", "todo", "fixme", "redacted", "notset", "unset"}


@dataclass(frozen=True)
class _Hit:
    start: int  # the span redaction replaces
    end: int
    kind: str


def find_secrets(text: str, filename: str = "") -> list[tuple[int, str]]:
    """(line number, kind) of each secret in text, in order. `filename` (its name is enough)
    says how to read it: a config file's unquoted values count, and detect-secrets reads YAML,
    INI and code each in its own way."""
    starts = _line_starts(text)
    return [(bisect.bisect_right(starts, h.start), h.kind) for h in _hits(text, filename)]


def redact_secrets(text: str, filename: str = "") -> tuple[str, int]:
    """text with each secret's value replaced by <REDACTED> (inside its quotes, so code still
    parses), and how many were replaced."""
    hits = _hits(text, filename)
    for h in reversed(hits):
        text = text[:h.start] + "<REDACTED>" + text[h.end:]
    return text, len(hits)


CONFIG_SUFFIXES = (".env", ".json", ".yaml", ".yml", ".toml", ".ini", ".cfg", ".conf", ".properties")
CONFIG_NAMES = (".env", ".npmrc", ".pypirc", ".netrc", "netrc", ".git-credentials", ".dockercfg")


def is_config(filename: str) -> bool:
    """A file that holds settings rather than code: `.env`, `.env.local`, `x.yaml`, `.npmrc`, ..."""
    name = PurePosixPath(filename).name.lower()
    return (name in CONFIG_NAMES or name.startswith(".env.") or name.endswith(CONFIG_SUFFIXES))


# In a config file a value needs no quotes: `DB_PASSWORD=hunter2`, `password: hunter2`,
# `api_key = abc123` (in code the same shape is a call or a name: `token = next_token()`).
_CONFIG_VALUE = re.compile(
    r"""(?im)^[ \t]*(?:export[ \t]+)?["']?(?P<name>[\w.-]*?(?:password|passwd|passphrase|pwd|secret|token|"""
    r"""api_?key|access_?key|auth|credentials?))["']?[ \t]*[:=][ \t]*(?P<value>[^\s'"#;,{}\[\]]{6,})[ \t]*$""")


def _hits(text: str, filename: str = "") -> list[_Hit]:
    hits: list[_Hit] = []

    def add(start: int, end: int, kind: str) -> None:
        if not any(start < h.end and h.start < end for h in hits):  # the first, most specific kind wins
            hits.append(_Hit(start, end, kind))

    lower = text.lower()
    for kind, needles, pattern in _TOKENS:
        for m in pattern.finditer(text) if any(n in lower for n in needles) else ():
            if "value" in pattern.groupindex:
                if not _placeholder(m.group("value")):
                    add(*m.span("value"), kind)
            else:
                add(*m.span(), kind)
    for m in _ASSIGNMENT.finditer(text):
        kind = _assignment_kind(m.group("name"), m.group("v1") if m.group("v1") is not None else m.group("v2"))
        if kind:
            add(*m.span("v1" if m.group("v1") is not None else "v2"), kind)
    config = is_config(filename)
    for m in _CONFIG_VALUE.finditer(text):
        value = m.group("value")
        # In code, only YAML inside a string (`password: Tr0ub4dor3`): a colon and a value with
        # letters and digits, not an annotation (`password: SecretStr`) or an assignment.
        in_code = ":" in text[m.end("name"):m.start("value")] and re.search(r"\d", value) and re.search(r"[A-Za-z]", value)
        if (config or in_code) and not _placeholder(value):
            add(*m.span("value"), "config value")
    for start, end, kind in _library_hits(text, filename):
        add(start, end, kind)
    return sorted(hits, key=lambda h: h.start)


def _line_starts(text: str) -> list[int]:
    return [0] + [m.end() for m in re.finditer("\n", text)]


# A line detect-secrets could flag holds a long token-like run, credentials in a URL or a secret's
# word: only those are handed to it (its plugins and filters cost ~0.5 ms a line, in Python).
_CANDIDATE = re.compile(r"[A-Za-z0-9+/=_.:~-]{16,}|://[^\s/@]+@|pass|secret|token|key|pwd|auth|private|cred", re.I)
# Shorter than these, a "secret" is a word or an id (`sort_key = "a1b2c3d4e5"` is 40 bits; a key
# in hex is 64 bits and more).
_SHORTEST = {"Hex High Entropy String": 16, "Base64 High Entropy String": 20, "Secret Keyword": 6}
# An IP address is not a secret that should keep a file from training.
_LIBRARY_OFF = ("IPPublicDetector",)


def _library_hits(text: str, filename: str) -> list[tuple[int, int, str]]:
    """(start, end, kind) of what detect-secrets finds, with its default plugins and filters."""
    try:
        from detect_secrets.core import scan as ds_scan
        from detect_secrets.settings import default_settings
    except ImportError:
        raise ImportError("finding secrets needs detect-secrets: pip install 'empower[hf]'") from None
    lines = text.split("\n")
    picked = [(i, line) for i, line in enumerate(lines) if _CANDIDATE.search(line)]
    if not picked:
        return []
    starts = _line_starts(text)
    found: list[tuple[int, int, str]] = []
    with default_settings() as settings:
        settings.disable_plugins(*_LIBRARY_OFF)
        # It drops every line that assigns a call's result (`sg = Client("SG.…")`), a secret
        # passed in the call included; its aim, `password = get_password()`, has no literal to
        # flag here anyway.
        settings.disable_filters("detect_secrets.filters.heuristic.is_indirect_reference")
        # Its public scan_file reads a path (we hold the text, perhaps of a file that changed),
        # and scan_line is its eager ad hoc mode without filters: the line-based pass that
        # scan_file runs is the one wanted. The lines are numbered 1.. among those picked.
        numbered = [(n, line) for n, (_, line) in enumerate(picked, 1)]
        for secret in ds_scan._process_line_based_plugins(numbered, filename=filename or "code"):
            value = secret.secret_value or ""
            i, line = picked[secret.line_number - 1]
            at = line.find(value) if value else -1
            entropy = secret.type.endswith("High Entropy String")
            if (at < 0 or _placeholder(value) or len(value) < _SHORTEST.get(secret.type, 0)
                    or entropy and _sequence(value)  # an alphabet, not a key
                    or secret.type == "Secret Keyword" and re.search(r"\s", value)):  # prose: a hint, a label
                continue
            found.append((starts[i] + at, starts[i] + at + len(value), secret.type))
    return found


def _assignment_kind(name: str, value: str) -> str | None:
    name = re.sub(r"[^a-z0-9]", "", name.rsplit(".", 1)[-1].lower())
    if _placeholder(value):
        return None
    if name.endswith(_PASSWORD_NAMES):
        return "password assignment"
    # a token must look random, or `pad_token = "[PAD]"` and `tokenizer_name = "gpt2"` would count
    if (name.endswith(_TOKEN_NAMES) and len(value) >= 8 and not re.search(r"\s", value)
            and re.search(r"[A-Za-z]", value) and re.search(r"[0-9]", value)
            and not re.search(r"\.[A-Za-z]{2,5}$|://", value)):  # a file name or a URL
        return "generic token assignment"
    return None


def _sequence(value: str) -> bool:
    """Holds 8 letters or digits in order (`abcdefgh`, `12345678`): an example or an alphabet."""
    v = value.lower()
    return any(seq[i:i + 8] in v for seq in ("abcdefghijklmnopqrstuvwxyz", "0123456789") for i in range(len(seq) - 7))


def _placeholder(value: str) -> bool:
    v = value.strip()
    if len(set(v)) <= 1 or (v.startswith("<") and v.endswith(">")):  # "", "xxx", "***", "<your key>"
        return True
    if v.startswith("$") or "{" in v and "}" in v or "%(" in v or "%s" in v:  # env refs and templates
        return True
    norm = re.sub(r"[^a-z0-9]", "", v.lower())
    return norm in _PLACEHOLDERS or norm.startswith("your") or set(norm) <= {"x"}


