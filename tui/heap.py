"""Keeping the garbage collector off the keystroke path."""

from __future__ import annotations

import gc


def freeze_heap(collect: bool = False) -> None:
    """Move what start-up created (Textual, llama.cpp, numpy: ~200k objects) out of the
    garbage collector's sight. Otherwise a full collection scans them all, 50-150 ms with the
    event loop stopped, and the keys typed meanwhile wait (bench/tui.py measured it).
    `collect`: first collect what is already garbage (~100 ms: only at start, before typing)."""
    if collect:
        gc.collect()
    gc.freeze()
