"""The benchmark run store's schema (RUN/run.sqlite), and the only place it is written down.

Append-only, as simonw/llm does it (and tui/migrations.py for the interaction log): each
`mNNN_...` function changes the schema once; sqlite-utils' Migrations records it by name under
this file's own set, and coach/schema.py applies the missing ones in order, refuses another kind
of file, and adopts a store from before. Never edit a migration that has shipped: add the next one.
"""

from __future__ import annotations

import sqlite_utils
from sqlite_utils import Migrations

from coach.schema import Schema

MIGRATIONS = Migrations("empower-run-store")


@MIGRATIONS()
def m001_initial(db: sqlite_utils.Database) -> None:
    # One row per run invocation: its resolved config, so the file explains how it was made.
    db["runs"].create({
        "id": int,
        "created": float,     # unix seconds
        "config": str,        # JSON
    }, pk="id", not_null={"created", "config"})
    # One row per finished episode; the key is unique so that a resumed run never doubles one.
    db["episodes"].create({
        "problem_id": str,
        "assistant": str,     # the model spec, as given
        "policy": str,        # the policy, with @eta when it has one
        "human": str,
        "seed": int,
        "correct": int,       # the Outcome fields (evals/metrics.py), for SQL without JSON
        "accepted": int,
        "suggested": int,
        "tokens_read": int,
        "tokens_written": int,
        "errored": int,
        "error": str,
        "verdict": str,
        "n_rounds": int,
        "seconds": float,
        "transcript": str,    # JSON: the whole Episode record, rounds included
        "created": float,
    }, pk=("problem_id", "assistant", "policy", "human", "seed"),
        not_null={"problem_id", "assistant", "policy", "human", "seed", "transcript", "created"})


@MIGRATIONS()
def m002_context(db: sqlite_utils.Database) -> None:
    # What the assistant was shown besides the code (`empower-evals --context`): "files", chunks
    # of the package's other files ahead of it, or "none". Part of the key, so that one run holds
    # both arms of a problem and the report pairs them. Every episode stored before this step
    # was played with the code alone: "none".
    db["episodes"].add_column("context", str, not_null_default="none")
    db["episodes"].transform(pk=("problem_id", "assistant", "policy", "human", "seed", "context"))


SCHEMA = Schema(MIGRATIONS, "an Empower run store", ("runs", "episodes"))
