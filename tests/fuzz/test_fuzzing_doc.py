"""docs/fuzzing.md tells the truth: its examples run, its table lists exactly the targets."""

from __future__ import annotations

import re
from pathlib import Path

from fuzz import TARGETS

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "fuzzing.md"


def test_the_python_examples_run() -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert blocks
    namespace: dict[str, object] = {}
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), namespace)


def test_the_table_lists_every_target_and_the_commands_exist() -> None:
    text = DOC.read_text()
    section = text.split("## Targets", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\| `([a-z_]+)` \|", section, re.M)
    assert listed == list(TARGETS)
    measured = text.split("## Measured", 1)[1].split("\n## ", 1)[0]
    assert sorted(re.findall(r"\| `([a-z_]+)` \|", measured)) == sorted(TARGETS)
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^fuzz:", makefile, re.M) and "FUZZ_SECONDS" in makefile and "FUZZ_TARGETS" in makefile
    for crash in re.findall(r"fuzz/corpus/(\w+)/crash-([0-9a-f]+)", text):
        assert list((ROOT / "fuzz" / "corpus" / crash[0]).glob(f"crash-{crash[1]}*")), crash


def test_the_threat_models_fuzzing_section_cites_tests_that_exist() -> None:
    text = (ROOT / "docs" / "threat-model.md").read_text()
    section = text.split("## Fuzzing", 1)[1].split("\n## ", 1)[0]
    assert f"({len(TARGETS)} targets" in section
    current = None
    cited = re.findall(r"`(tests/[\w/]+\.py|…)(?:::(\w+))?`", section)
    assert len(cited) >= 8
    for path, name in cited:
        current = current if path == "…" else ROOT / path
        assert current is not None and current.is_file(), path
        if name:
            assert f"def {name}(" in current.read_text(), f"{path}::{name}"
    for name in ("message", "sealed_body", "stored_object"):  # the targets its rows name
        assert f"`{name}`" in section and name in TARGETS, name
