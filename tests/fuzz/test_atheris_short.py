"""The short fuzzing run of make test: every target under atheris for a fixed number of iterations.

Each target runs in its own subprocess (``python -m fuzz TARGET -runs=N``): coverage-guided
mutation from the committed corpus, under the address-space cap of its memory bound, with the
oracle of :mod:`fuzz._harness`. A crash, an oracle violation, a ``MemoryError`` past the cap or a
timeout fails the test with libFuzzer's report (the crashing input is in the run's folder).
``ECRCRYPT_FUZZ_SCALE`` scales the iteration counts; the long run is ``make fuzz``.
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fuzz import TARGETS
from fuzz._harness import environment_runs

pytest.importorskip("atheris", reason="atheris is not installed (Linux wheels only): the corpus replay still runs")

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", TARGETS)
def test_short_fuzzing_run_finds_nothing(name: str, tmp_path: Path) -> None:
    runs = environment_runs(importlib.import_module(f"fuzz.{name}").TARGET.runs)
    done = subprocess.run(
        [sys.executable, "-m", "fuzz", name, "--out", str(tmp_path), f"-runs={runs}", "-seed=1", "-timeout=10"],
        cwd=ROOT,
        env={**os.environ, "PYTHONHASHSEED": "0"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    report = done.stderr[-6000:]
    assert done.returncode == 0, report
    # libFuzzer counts the inputs it executed, which can be one more than -runs= (an input it
    # replays on its way out): the run must have reached the count, not hit it exactly.
    finished = re.search(r"Done (\d+) runs", report)
    assert finished is not None and int(finished.group(1)) >= runs, report
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(("crash-", "oom-", "timeout-"))], report
