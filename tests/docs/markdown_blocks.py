"""Fenced code blocks of the project's markdown, and which of them run.

Rules (docs/testing.md, "Docs that run"):

* every ```python block runs, on its own, in a fresh namespace and a fresh temporary
  directory; a block preceded by the line ``<!-- docs: continue -->`` continues the
  block before it on the same page (same namespace, same directory);
* every ```shell / ```sh / ```bash / ```console block whose first command starts with
  ``ecrcrypt`` runs under ``bash -euo pipefail`` in a fresh temporary directory with
  ``ECRCRYPT_DIR`` set to ``./registry`` there (``console`` blocks: the ``$ `` lines);
  ``<!-- docs: continue -->`` chains them the same way;
* other blocks (``text``, ``json``, setup commands like ``make test``) are not run.
"""

from __future__ import annotations

import re
from pathlib import Path

import attrs

ROOT = Path(__file__).resolve().parents[2]
CONTINUE = "<!-- docs: continue -->"
SHELLS = frozenset({"shell", "sh", "bash", "console"})
_FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)


@attrs.frozen
class Block:
    path: Path
    line: int
    language: str
    code: str
    continues: bool

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    def commands(self) -> str:
        """The shell text to run: a console block's ``$ `` lines, or the whole block."""
        if self.language != "console":
            return self.code
        return "\n".join(line[2:] for line in self.code.splitlines() if line.startswith("$ "))

    @property
    def runs(self) -> bool:
        if self.language == "python":
            return True
        if self.language in SHELLS:
            lines = [ln.strip() for ln in self.commands().splitlines()]
            first = next((ln for ln in lines if ln and not ln.startswith("#")), "")
            return first.startswith("ecrcrypt")
        return False


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def blocks(path: Path) -> list[Block]:
    text = path.read_text()
    found = []
    for m in _FENCE.finditer(text):
        before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1].strip()
        found.append(
            Block(path, text.count("\n", 0, m.start()) + 1, m.group(1).lower(), m.group(2), before == CONTINUE)
        )
    return found


def chains() -> list[list[Block]]:
    """The runnable blocks, grouped: a chain is a block and the blocks that continue it."""
    out: list[list[Block]] = []
    for page in pages():
        previous: Block | None = None
        for block in blocks(page):
            if not block.runs:
                continue
            if block.continues:
                same_kind = previous is not None and (
                    previous.language == block.language or {previous.language, block.language} <= SHELLS
                )
                assert same_kind, f"{block.where}: '{CONTINUE}' but no runnable block of the same kind before it"
                out[-1].append(block)
            else:
                out.append([block])
            previous = block
    return out
