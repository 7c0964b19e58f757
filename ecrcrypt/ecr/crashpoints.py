"""Named points between the steps of a multi-step operation, where a crash test may kill the process.

The crash tests (``tests/ecr/test_crash_*.py``) install a hook in a child process that
SIGKILLs itself at the n-th point it reaches, so that kills land exactly in the windows
that matter -- between a KMS call and the database write that records it, between a blob
commit and its metadata row -- instead of wherever a timer happens to fire. Without a hook
(always, outside those tests) a point costs one global lookup and one comparison.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["crashpoint", "set_crash_hook"]

_hook: Callable[[str], None] | None = None


def set_crash_hook(hook: Callable[[str], None] | None) -> None:
    """Install (or, with ``None``, remove) the function every :func:`crashpoint` calls. Test-only."""
    global _hook
    _hook = hook


def crashpoint(name: str) -> None:
    """Mark a point where a crash must leave recoverable state; ``name`` says which window."""
    if _hook is not None:
        _hook(name)
