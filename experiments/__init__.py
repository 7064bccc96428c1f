"""Experiments that drive Empower's own commands end to end (not installed: run from the repository)."""
