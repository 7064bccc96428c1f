"""Waiting on the real app through Textual's pilot: the editor's work happens in thread workers,
so a test waits for what a person would see, with a deadline that names what never came."""

from __future__ import annotations

import time


async def until(pilot, predicate, timeout: float = 15.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)
