"""MkDocs hook: a page in docs/ that the nav of mkdocs.yml does not list goes under "More".

Pages are added by several people at once; without this, strict mode fails on the first page
someone forgets to list, or the page builds but no menu leads to it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _listed(nav: Any) -> set[str]:
    if isinstance(nav, str):
        return {nav}
    if isinstance(nav, list):
        return set().union(*(_listed(item) for item in nav)) if nav else set()
    if isinstance(nav, dict):
        return set().union(*(_listed(v) for v in nav.values())) if nav else set()
    return set()


def on_config(config: Any) -> Any:
    nav = config.get("nav")
    if not nav:
        return config
    listed = _listed(nav)
    docs = Path(config["docs_dir"])
    pages = (p.relative_to(docs).as_posix() for p in docs.rglob("*.md"))
    missing = sorted(page for page in pages if page not in listed)
    if missing:
        nav.append({"More": missing})
    return config
