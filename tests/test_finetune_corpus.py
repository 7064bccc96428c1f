"""finetune/corpus.py on real files: a walk with .gitignore, a real git repository, each reason
a file is left out, secrets found and redacted, and the inputs where nothing can be done.

The fake secrets below are assembled from pieces, so that this file holds none itself (a test
checks it) and no secret scanner stops a push of it.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from rich.console import Console

from finetune import corpus
from finetune.corpus import ScanError, Skipped, find_secrets, redact_secrets, scan
from finetune.scan import print_report

ROOT = Path(__file__).resolve().parent.parent
needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
CODE = "def add(a, b):\n    return a + b\n"


@pytest.fixture(autouse=True)
def no_enclosing_repo(tmp_path, monkeypatch):
    """tmp_path is in no repository as far as git looks, wherever TMPDIR is."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))


def write(root: Path, rel: str, content: str | bytes = CODE) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", "-c", "init.defaultBranch=main",
                    *args], cwd=root, check=True, capture_output=True)


def rels(found) -> list[str]:
    return [f.rel for f in found.files]


def skip_of(found, rel: str) -> Skipped:
    [s] = [s for s in found.skipped if s.rel == rel]
    assert rel not in rels(found)
    return s


# --- listing ---------------------------------------------------------------------------------

@pytest.mark.parametrize("with_git", [False, pytest.param(True, marks=needs_git)])
def test_the_default_runs_directory_in_the_code_is_not_read_as_code(with_git, tmp_path):
    """`empower-finetune .` run from the code's own directory puts empower-runs/ there; a second
    scan must not learn from what the first one wrote (an exported model's scripts, a data dir)."""
    from finetune.run_config import RUNS, keep_out_of_git

    write(tmp_path, "app.py")
    if with_git:
        git(tmp_path, "init", "-q")
    keep_out_of_git(tmp_path / RUNS)
    write(tmp_path, f"{RUNS}/app/export/merged/modeling.py", "class Model: pass\n")
    keep_out_of_git(tmp_path / RUNS)  # a second run leaves the person's own edits to it alone
    assert rels(scan(tmp_path)) == ["app.py"]
    if with_git:
        status = subprocess.run(["git", "status", "--porcelain"], cwd=tmp_path, capture_output=True, text=True).stdout
        assert "empower-runs" not in status


def test_keeps_the_files_of_the_language_sorted(tmp_path):
    write(tmp_path, "b.py")
    write(tmp_path, "pkg/a.py", "x = 1\n")
    write(tmp_path, "stubs.pyi", "y: int\n")
    write(tmp_path, "README.md", "# not code\n")
    write(tmp_path, "main.go", "package main\n")
    found = scan(tmp_path)
    assert found.source == "walk" and found.root == tmp_path.resolve()
    assert rels(found) == ["b.py", "pkg/a.py", "stubs.pyi"]
    f = found.files[0]
    assert f.path == tmp_path.resolve() / "b.py" and f.text == CODE and f.lang == "python" and f.redacted == 0
    assert len(f.sha256) == 64 and found.skipped == []
    both = scan(tmp_path, langs=("python", "go"))
    assert {f.rel: f.lang for f in both.files}["main.go"] == "go"


def test_gitignore_rules_outside_git_root_and_nested(tmp_path):
    write(tmp_path, ".gitignore", "ignored.py\nout/\n*_tmp.py\n!keep_tmp.py\n")
    write(tmp_path, "sub/.gitignore", "local.py\n/anchored.py\n")
    for rel in ("kept.py", "ignored.py", "deep/ignored.py", "out/gen.py", "x_tmp.py", "keep_tmp.py",
                "sub/local.py", "sub/deeper/local.py", "sub/anchored.py", "sub/deeper/anchored.py",
                "local.py", ".git/hooks/hook.py"):
        write(tmp_path, rel, f"# {rel}\n")
    found = scan(tmp_path)
    assert found.source == "walk"
    # nested rules apply below their own directory only; "/x" is anchored to the .gitignore's directory
    assert rels(found) == ["keep_tmp.py", "kept.py", "local.py", "sub/deeper/anchored.py"]
    assert found.skipped == []  # what .gitignore excludes is not listed


@needs_git
def test_git_lists_tracked_and_untracked_files_less_the_ignored(tmp_path):
    write(tmp_path, ".gitignore", "ignored.py\n")
    write(tmp_path, "tracked.py", "a = 1\n")
    write(tmp_path, "sub/deleted.py", "gone = 1\n")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "first")
    (tmp_path / "sub/deleted.py").unlink()
    write(tmp_path, "untracked.py", "b = 2\n")
    write(tmp_path, "ignored.py", "c = 3\n")
    write(tmp_path, "sub/new.py", "d = 4\n")
    write(tmp_path, "vendor/lib.py", "e = 5\n")
    found = scan(tmp_path)
    assert found.source == "git"
    assert rels(found) == ["sub/new.py", "tracked.py", "untracked.py"]
    assert skip_of(found, "sub/deleted.py").reason == "unreadable"
    assert skip_of(found, "vendor/").reason == "vendored"
    sub = scan(tmp_path / "sub")  # a directory inside a repository: its files, relative to it
    assert sub.source == "git" and rels(sub) == ["new.py"]


def test_without_git_a_repository_is_walked(tmp_path, monkeypatch):
    write(tmp_path, ".gitignore", "ignored.py\n")
    write(tmp_path, "kept.py")
    write(tmp_path, "ignored.py", "x = 1\n")
    (tmp_path / ".git").mkdir()
    write(tmp_path, ".git/hooks/hook.py", "y = 1\n")
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))  # no git to be found
    found = scan(tmp_path)
    assert found.source == "walk" and rels(found) == ["kept.py"]


# --- each reason a file is left out ----------------------------------------------------------

SKIPS = [  # (case, reason, what to build, the rel it is reported under)
    ("binary", "binary", lambda r: write(r, "x.py", b"print(1)\x00\x01\x02"), "x.py"),
    ("not utf-8", "not utf-8", lambda r: write(r, "x.py", b"s = '\xff\xfe'\n"), "x.py"),
    ("generated header", "generated",
     lambda r: write(r, "x.py", "# -*- coding: utf-8 -*-\n# Generated by the protocol buffer compiler.  "
                                "DO NOT EDIT!\nx = 1\n"), "x.py"),
    ("generated name", "generated", lambda r: write(r, "msg_pb2.py", "x = 1\n"), "msg_pb2.py"),
    ("minified long line", "minified", lambda r: write(r, "x.py", "x = [" + "1, " * 3000 + "]\n"), "x.py"),
    ("minified on average", "minified", lambda r: write(r, "x.py", ("x = '" + "a" * 400 + "'\n") * 10), "x.py"),
    ("vendored .venv", "vendored", lambda r: write(r, ".venv/lib/site-packages/pkg/x.py"), ".venv/"),
    ("vendored node_modules", "vendored", lambda r: write(r, "web/node_modules/x.py"), "web/node_modules/"),
    ("duplicate", "duplicate", lambda r: write(r, "z_copy.py", (r / "keep.py").read_text()), "z_copy.py"),
    ("symlink outside", "symlink outside",
     lambda r: os.symlink(write(r.parent, "outside/x.py", "y = 1\n"), r / "x.py"), "x.py"),
    ("symlink loop", "symlink loop", lambda r: (os.symlink("b.py", r / "a.py"), os.symlink("a.py", r / "b.py")),
     "a.py"),
    ("symlink to itself", "symlink loop", lambda r: os.symlink("self.py", r / "self.py"), "self.py"),
    ("broken symlink", "unreadable", lambda r: os.symlink("missing.py", r / "broken.py"), "broken.py"),
    ("fifo", "unreadable", lambda r: os.mkfifo(r / "pipe.py"), "pipe.py"),
    ("secret", "secret", lambda r: write(r, "x.py", "KEY = '" + "AKIA" + "IOSFODNN7EXAMPLE" + "'\n"), "x.py"),
]


@pytest.mark.timeout(20)  # a FIFO opened for reading would block forever
@pytest.mark.parametrize("case,reason,build,rel", SKIPS, ids=[c[0] for c in SKIPS])
def test_each_skip_reason(case, reason, build, rel, tmp_path):
    if case == "fifo" and not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    root = tmp_path / "proj"
    write(root, "keep.py")
    build(root)
    found = scan(root)
    assert skip_of(found, rel).reason == reason
    assert rels(found) == ["keep.py"]
    assert found.counts() == {reason: 2 if case == "symlink loop" else 1}  # a.py and b.py both loop


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
@pytest.mark.timeout(20)
def test_a_fifo_is_judged_from_its_stat_never_opened(tmp_path, monkeypatch):
    write(tmp_path, "keep.py")
    os.mkfifo(tmp_path / "pipe.py")
    real_read = corpus._read_bytes
    monkeypatch.setattr(corpus, "_read_bytes", lambda path, limit: real_read(path, limit) if path.name != "pipe.py"
                        else pytest.fail("the FIFO was opened"))
    assert skip_of(scan(tmp_path), "pipe.py").detail == "not a regular file (a FIFO)"


def test_a_vendored_directory_is_one_entry_and_not_entered(tmp_path, monkeypatch):
    write(tmp_path, "keep.py")
    for i in range(3):
        write(tmp_path, f"node_modules/pkg{i}/index.py")
    entered = []
    real_walk = os.walk
    monkeypatch.setattr(corpus.os, "walk", lambda *a, **k: (entered.append(t[0]) or t for t in real_walk(*a, **k)))
    found = scan(tmp_path)
    assert [s for s in found.skipped] == [Skipped("node_modules/", "vendored", "directory, not read")]
    assert not any("node_modules" in d for d in entered)


def test_the_first_duplicate_in_sorted_order_is_kept(tmp_path):
    for rel in ("b/x.py", "a/x.py", "c.py"):
        write(tmp_path, rel)
    found = scan(tmp_path)
    assert rels(found) == ["a/x.py"]
    assert {s.rel: s.detail for s in found.skipped} == {"b/x.py": "same as a/x.py", "c.py": "same as a/x.py"}


def test_a_link_inside_the_directory_is_read_as_a_duplicate(tmp_path):
    write(tmp_path, "real.py")
    os.symlink("real.py", tmp_path / "zlink.py")
    found = scan(tmp_path)
    assert rels(found) == ["real.py"] and skip_of(found, "zlink.py").reason == "duplicate"


def test_links_to_directories_are_not_followed(tmp_path):
    root = tmp_path / "proj"
    write(root, "keep.py")
    write(tmp_path, "outside/x.py", "y = 1\n")
    os.symlink(tmp_path / "outside", root / "ext")
    os.symlink(root, root / "loop")  # would walk forever if followed
    found = scan(root)
    assert rels(found) == ["keep.py"] and found.skipped == []


@pytest.mark.timeout(20)
def test_a_200_mb_file_is_skipped_from_its_size_without_reading_it(tmp_path, monkeypatch):
    write(tmp_path, "keep.py")
    with open(tmp_path / "huge.py", "wb") as f:
        f.truncate(200 * 1024 * 1024)  # sparse: no disk, no time
    real_read = corpus._read_bytes

    def read(path, limit):
        assert path.name != "huge.py", "the large file was opened"
        return real_read(path, limit)

    monkeypatch.setattr(corpus, "_read_bytes", read)
    found = scan(tmp_path)
    s = skip_of(found, "huge.py")
    assert s.reason == "too large" and "209.7 MB" in s.detail and "limit 1.0 MB" in s.detail


def test_the_size_limit_is_a_parameter(tmp_path):
    write(tmp_path, "small.py", "x = 1\n")
    write(tmp_path, "big.py", "x = 1\n" * 100)
    found = scan(tmp_path, max_bytes=100)
    assert rels(found) == ["small.py"] and skip_of(found, "big.py").reason == "too large"


def test_a_file_that_changes_while_it_is_read(tmp_path, monkeypatch):
    write(tmp_path, "keep.py")
    write(tmp_path, "moving.py", "x = 1\n")
    real_read = corpus._read_bytes

    def read_while_someone_types(path, limit):
        data = real_read(path, limit)
        if path.name == "moving.py":
            with open(path, "a") as f:
                f.write("y = 2\n")
        return data

    monkeypatch.setattr(corpus, "_read_bytes", read_while_someone_types)
    found = scan(tmp_path)
    assert skip_of(found, "moving.py").reason == "changed while reading"
    assert rels(found) == ["keep.py"]


def test_a_file_deleted_while_it_is_read(tmp_path, monkeypatch):
    write(tmp_path, "keep.py")
    write(tmp_path, "gone.py", "x = 1\n")
    real_read = corpus._read_bytes

    def read_then_delete(path, limit):
        data = real_read(path, limit)
        if path.name == "gone.py":
            path.unlink()
        return data

    monkeypatch.setattr(corpus, "_read_bytes", read_then_delete)
    assert skip_of(scan(tmp_path), "gone.py").reason == "changed while reading"


# --- secrets -----------------------------------------------------------------------------------

def _pem(kind: str) -> str:
    body = "MIIEowIBAAKCAQEA" + "q7BFUAbc0123" * 5
    return f"-----BEGIN {kind}PRIVATE KEY-----\n{body}\n-----END {kind}PRIVATE KEY-----"


AWS_ID = "AKIA" + "IOSFODNN7EXAMPLE"
AWS_SECRET = "".join(["wJalrXUtnFEMI/K7MDENG/", "bPxRfiCYEXAMPLEKEY"])
PASSWORD = "".join(["hun", "ter2"])
SECRETS = [  # (kind, a line of Python, the secret in it)
    ("private key", 'KEY = """' + _pem("RSA ") + '"""', _pem("RSA ").split("\n")[1]),
    ("private key", 'KEY = """' + _pem("OPENSSH ") + '"""', _pem("OPENSSH ").split("\n")[1]),
    ("private key", 'KEY = "' + _pem("EC ").replace("\n", "\\n") + '"', "q7BFUAbc0123"),
    ("AWS access key", f'client = boto3.client("s3", aws_access_key_id="{AWS_ID}")', AWS_ID),
    ("AWS secret key", f'aws_secret_access_key = "{AWS_SECRET}"', AWS_SECRET),
    ("GitHub token", 'headers = {"Authorization": "token ' + "ghp_" + "a1B2c3D4" * 5 + '"}', "a1B2c3D4" * 5),
    ("GitHub token", 'GH = "' + "github_pat_" + "11ABCDEFG0" + "_xYz" * 10 + '"', "_xYz" * 10),
    ("Slack token", 'slack = WebClient(token="' + "xoxb-" + "1234567890-" + "AbCdEf123456" + '")', "AbCdEf123456"),
    ("OpenAI key", 'client = OpenAI(api_key="' + "sk-" + "proj-" + "aB3dE5" * 6 + '")', "aB3dE5" * 6),
    ("Google API key", 'url = f"https://maps.googleapis.com/?key=' + "AIza" + "Sy" + "A1b2C3d4E5" * 3 + 'xyz"',
     "A1b2C3d4E5" * 3),
    ("password assignment", f'password = "{PASSWORD}"', PASSWORD),
    ("password assignment", f"PASSWORD: str = '{PASSWORD}'", PASSWORD),
    ("password assignment", f'DB = {{"user": "me", "password": "{PASSWORD}"}}', PASSWORD),
    ("password assignment", f'conn = connect(host="db", password="{PASSWORD}")', PASSWORD),
    ("password assignment", f'config["db_password"] = "{PASSWORD}"', PASSWORD),
    ("password assignment", f"pw = dict(password=f'{PASSWORD}')", PASSWORD),
    ("generic token assignment", 'api_key="' + "a1b2c3" + 'd4e5f6"', "a1b2c3" + "d4e5f6"),
    ("generic token assignment", 'secret_token = "' + "s3cr3t" + '-t0ken-value"', "s3cr3t" + "-t0ken-value"),
    ("generic token assignment", 'SECRET_KEY = "django-insecure-' + "9x8y7z" + 'w6v5"', "9x8y7z" + "w6v5"),
]


def _module(line: str) -> str:
    return f"import os\n\n{line}\n\n\ndef add(a, b):\n    return a + b\n"


@pytest.mark.parametrize("kind,line,value", SECRETS, ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(SECRETS)])
def test_a_file_with_a_secret_is_left_out_or_redacted(kind, line, value, tmp_path):
    module = _module(line)
    assert find_secrets(module) == [(3, kind)]
    write(tmp_path, "keep.py")
    write(tmp_path, "leaky.py", module)
    s = skip_of(scan(tmp_path), "leaky.py")
    assert (s.reason, s.detail) == ("secret", f"{kind} on line 3")
    [kept] = [f for f in scan(tmp_path, redact=True).files if f.rel == "leaky.py"]
    assert value not in kept.text and "<REDACTED>" in kept.text and kept.redacted == 1
    assert kept.text.startswith("import os\n\n") and kept.text.endswith(_module("").split("\n\n", 2)[2])
    ast.parse(kept.text)  # the value went, the code around it stayed
    assert find_secrets(kept.text) == []


def test_secrets_in_other_languages_and_counts(tmp_path):
    js = 'const apiKey = "' + "a1b2c3" + 'd4e5f6g7";\nconst password = "' + PASSWORD + '";\n'
    assert find_secrets(js) == [(1, "generic token assignment"), (2, "password assignment")]
    go = 'token := "' + "ghp_" + "Z9y8X7w6" * 5 + '"\n'
    assert find_secrets(go) == [(1, "GitHub token")]  # the specific kind, not the assignment too
    text, n = redact_secrets(js)
    assert n == 2 and text == 'const apiKey = "<REDACTED>";\nconst password = "<REDACTED>";\n'
    write(tmp_path, "keep.py")
    write(tmp_path, "two.py", _module(f'password = "{PASSWORD}"\n' + 'api_key = "' + "a1b2c3" + 'd4e5f6"'))
    assert skip_of(scan(tmp_path), "two.py").detail == "password assignment on line 3 (+1 more)"


# Formats a scan once let through into a dataset (issue 19), each assembled from pieces.
RANDOM = "".join(["Ab3dE5gH", "7jK9mN1p", "Q3sT5vW7", "yZ"])  # pieces: the entropy finder reads 20+
B64 = "".join(["q0hLXi3bQk0aB9m", "Z0sL0p8R+2kYx3f", "Z4uJp1Qw9vN2c5B", "7kHj3mLq8wX2cR4", "tY6uI0oP1aS3dF5",
               "gH7jK9lZ1xC9wE=="])
JWT = ".".join(["".join(["eyJhbGciOiJIUzI", "1NiIsInR5cCI6Ik", "pXVCJ9"]),
                "".join(["eyJzdWIiOiIxMjM", "0NTY3ODkwIiwibm", "FtZSI6IkpvaG4gR", "G9lIn0"]),
                "".join(["SflKxwRJSMeKKF2", "QT4fwpMeJf36POk", "6yJV_adQssw5c"])])
LEAKS = [  # (file, its text, the secret in it)
    ("db.py", 'DATABASE_URL = "postgres://admin:' + "Hunt3r2" + 'Xq9@db.example.com:5432/app"\n', "Hunt3r2Xq9"),
    ("azure.py", 'conn = "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=' + B64 + ';EndpointSuffix=core.windows.net"\n', B64[:40]),
    ("slack.py", 'HOOK = "https://hooks.slack.com/services/' + "T01234567/B07654321/" + RANDOM[:24] + '"\n', RANDOM[:24]),
    ("jwt.py", f'TOKEN_EXAMPLE = "{JWT}"\n', JWT.split(".")[2]),
    ("gitlab.py", 'gl = Gitlab(url, private_token="' + "glpat-" + RANDOM[:20] + '")\n', RANDOM[:20]),
    ("pypi.py", 'upload(auth="' + "pypi-" + "AgEIcHlwaS5vcmc" + "CJDU3ZjQ4NTk0LW" + "IyNjgtNDE4Ni1hZ" + RANDOM + '")\n',
     RANDOM),
    ("sendgrid.py", 'sg = SendGridAPIClient("' + "SG." + RANDOM[:22] + "." + (RANDOM * 2)[:43] + '")\n', RANDOM[:22]),
    ("telegram.py", 'bot = Bot("' + "110201543:AA" + (RANDOM * 2)[:33] + '")\n', (RANDOM * 2)[:33]),
    ("npm.py", 'NPMRC = "//registry.npmjs.org/:_authToken=' + "npm_" + (RANDOM * 2)[:36] + '"\n', (RANDOM * 2)[:36]),
    ("hexkey.py", 'signing = bytes.fromhex("' + "6f1ed002ab55" + "95859014eb" + "f0951522d9" + '")\n', "6f1ed002ab55"),
    ("comment.py", "# the staging password is " + "Tr0ub4dor&3" + "\nx = 1\n", "Tr0ub4dor&3"),
    ("yaml_in_code.py", 'CONFIG = """\ndb:\n  user: me\n  pass' + 'word: ' + "Tr0ub4dor3x" + '\n"""\n', "Tr0ub4dor3x"),
]


@pytest.mark.parametrize("name,text,value", LEAKS, ids=[n for n, _, _ in LEAKS])
def test_a_secret_of_every_format_found_never_reaches_a_dataset(name, text, value, tmp_path):
    write(tmp_path, "keep.py")
    write(tmp_path, name, "import os\n" + text)
    assert find_secrets(text, name), f"{name}: nothing found"
    found = scan(tmp_path)
    assert skip_of(found, name).reason == "secret" and value not in "".join(f.text for f in found.files)
    [kept] = [f for f in scan(tmp_path, redact=True).files if f.rel == name]
    assert value not in kept.text and "<REDACTED>" in kept.text


CONFIGS = [  # never learnt from (not code), but a secret in one is reported
    (".env", "DEBUG=1\nDB_PASSWORD=" + "Tr0ub4dor3x" + "\n", 2),
    ("settings.yaml", "db:\n  host: localhost\n  password: " + "Tr0ub4dor3x" + "\n", 3),
    ("app.ini", "[db]\nhost = localhost\npassword = " + "Tr0ub4dor3x" + "\n", 3),
    ("config.json", '{"name": "app", "api_key": "' + RANDOM + '"}\n', 1),
    ("pyproject.toml", '[tool.x]\ntoken = "' + "ghp_" + "a1B2c3D4" * 5 + '"\n', 2),
]


@pytest.mark.parametrize("name,text,line", CONFIGS, ids=[n for n, _, _ in CONFIGS])
def test_a_config_file_with_a_secret_is_reported_though_never_read_as_code(name, text, line, tmp_path):
    write(tmp_path, "keep.py")
    write(tmp_path, name, text)
    write(tmp_path, "clean.yaml", "db:\n  host: localhost\n  password: ${DB_PASSWORD}\n")
    found = scan(tmp_path)
    s = skip_of(found, name)
    assert s.reason == "secret" and f"on line {line}" in s.detail and "config file" in s.detail
    assert "clean.yaml" not in [x.rel for x in found.skipped] and rels(found) == ["keep.py"]


def test_a_repository_whose_config_runs_commands_is_listed_without_running_them(tmp_path):
    """git runs core.fsmonitor on `ls-files --others` (and hooks on other commands): a scanned
    repository's own config must not make it run anything."""
    marker = tmp_path / "ran"
    repo = tmp_path / "repo"
    write(repo, "a.py")
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "add", "a.py"], check=True)
    write(repo, "b.py", "def sub(a, b):\n    return a - b\n")  # untracked: --others asks fsmonitor
    hostile = f"touch {marker}; false"
    for key in ("core.fsmonitor", "core.sshCommand", "core.pager", "diff.external"):
        subprocess.run(["git", "-C", str(repo), "config", key, hostile], check=True)
    hooks = repo / ".git" / "hooks"
    for hook in ("post-checkout", "post-index-change", "reference-transaction"):
        (hooks / hook).write_text(f"#!/bin/sh\ntouch {marker}\n")
        (hooks / hook).chmod(0o755)
    # the attack is real: plain git runs it
    subprocess.run(["git", "-C", str(repo), "ls-files", "--others"], capture_output=True)
    assert marker.exists()
    marker.unlink()

    found = scan(repo)
    assert found.source == "git" and rels(found) == ["a.py", "b.py"]
    assert not marker.exists()


NOT_SECRETS = [
    'password = ""', "password = ''", 'password = "changeme"', 'password = "xxx"', 'password = "********"',
    'api_key = "<your-api-key>"', 'password = "${DB_PASSWORD}"', 'password = "{password}"',
    'password = os.environ["DB_PASSWORD"]', 'api_key = os.getenv("OPENAI_API_KEY")',
    'token = os.environ.get("TOKEN", "")', 'conn = connect(password=os.environ["PW"])',
    'eos_token = "<|endoftext|>"', 'pad_token = "[PAD]"', 'tokenizer_name = "meta-llama/Llama-3.2-1B"',
    'max_tokens = 256', 'sort_key = "a1b2c3d4e5"', 'password_hint = "the first pet"',
    'task = "task-abcdefghijklmnopqrstuvwxyz0123"', 'credentials_file = "creds2.json"',
    'secret = "your-secret-here"', 'if token:\n    name = "a1b2c3d4e5f6"',
    'KEY = "<REDACTED>"', 'model = "sk-learn-classifier-pipeline-2"',
]


@pytest.mark.parametrize("line", NOT_SECRETS)
def test_placeholders_and_environment_reads_are_not_secrets(line):
    assert find_secrets(_module(line)) == []


def test_this_repository_holds_no_secret_of_its_own():
    assert find_secrets(Path(__file__).read_text()) == []
    found = scan(ROOT / "finetune")
    assert "corpus.py" in rels(found)  # the patterns do not match themselves


# --- nothing to do -----------------------------------------------------------------------------

def _one_line_error(root, **kwargs) -> ScanError:
    with pytest.raises(ScanError) as e:
        scan(root, **kwargs)
    assert "\n" not in str(e.value)
    return e.value


def test_nothing_can_be_done(tmp_path):
    assert "does not exist" in str(_one_line_error(tmp_path / "missing"))
    write(tmp_path, "file.py")
    assert "is not a directory" in str(_one_line_error(tmp_path / "file.py"))
    (tmp_path / "empty").mkdir()
    e = _one_line_error(tmp_path / "empty")
    assert str(e) == f"nothing to learn from in {tmp_path.resolve() / 'empty'}: no python files (.py, .pyi)"
    assert "unknown language cobol" in str(_one_line_error(tmp_path, langs=("cobol",)))


def test_everything_skipped_says_why(tmp_path):
    write(tmp_path, "a.py", b"\x00")
    write(tmp_path, "b.py", b"\x00\x01")
    write(tmp_path, "c.py", f'password = "{PASSWORD}"\n')
    e = _one_line_error(tmp_path)
    assert str(e) == f"nothing to learn from in {tmp_path.resolve()}: 3 skipped (2 binary, 1 secret)"
    assert e.corpus is not None and e.corpus.counts() == {"binary": 2, "secret": 1}


# --- progress and report -----------------------------------------------------------------------

def test_progress_and_report(tmp_path):
    write(tmp_path, "a.py", "x = 1\ny = 2\n")
    write(tmp_path, "b.py", b"\x00")
    write(tmp_path, "[odd].py", f'password = "{PASSWORD}"\n')
    calls = []
    found = scan(tmp_path, progress=lambda done, total: calls.append((done, total)))
    assert calls[0] == (0, 3) and calls[-1] == (3, 3)
    console = Console(record=True, width=120)
    print_report(found, console, count_tokens=lambda text: len(text.split()))
    out = console.export_text()
    assert "kept: python" in out and "skipped: binary" in out and "skipped: secret" in out
    assert "tokens" in out and " 6 " in out and "[odd].py" in out and PASSWORD not in out
    console = Console(record=True, width=120)
    print_report(scan(tmp_path, redact=True), console)
    assert "1 secrets redacted in 1 files" in console.export_text()
