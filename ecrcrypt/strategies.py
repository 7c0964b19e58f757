"""Public Hypothesis strategies for ecrcrypt's values (being written; see issue 2, item 8)."""

from __future__ import annotations


def _hypothesis_setup_hook() -> None:
    """Registered as Hypothesis's entry point so ``st.from_type`` knows ecrcrypt's types."""
