"""The performance figures of README.md and docs/benchmarks.md are the committed run's, rendered.

``benchmarks/out/latest.json`` is the run; ``make claims`` (``python -m benchmarks.claims``) writes
its figures between marker comments of the two pages. These tests fail when a page and the run
disagree (a new run committed without its rendering, a figure edited by hand) and when a page states
a measured figure outside the generated regions.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from benchmarks import claims

UNITS = re.compile(r"\d[\d,.]*\s?(?:µs|ms|GB/s|GiB/s|MiB/s)(?!\w)|\d\.\d+\s?[x\u00d7](?!\w)")


def _run() -> dict[str, Any]:
    return claims.load()


def test_the_run_is_committed_and_every_gap_is_explained() -> None:
    run = _run()
    assert run["meta"]["mode"] in ("quick", "full") and "seconds" in run["meta"]
    for c in (*claims.HEADLINE, *claims.TARGETS):
        if c.key in run:
            continue
        # A figure the run lacks is printed with its reason (a quick run's missing sections, a
        # skipped section's cause), never as an unexplained blank and never filled in.
        text = claims.figure(run, c.key)
        assert text.startswith("— (") and "not measured by this run" not in text, (c.key, text)
        if run["meta"]["mode"] == "full":
            assert "full mode only" not in text


def test_the_pages_show_the_committed_run() -> None:
    for path, expected in claims.rendered_pages(_run()).items():
        assert path.read_text() == expected, f"{path.name} differs from benchmarks/out/latest.json: run `make claims`"


def _outside_regions(text: str) -> str:
    return re.sub(r"<!-- claims:\w+:begin -->.*?<!-- claims:\w+:end -->", "", text, flags=re.S)


@pytest.mark.parametrize("name", sorted(claims.PAGES))
def test_no_measured_figure_is_typed_by_hand(name: str) -> None:
    page = claims.PAGES[name]
    found = UNITS.findall(_outside_regions(page.read_text()))
    assert not found, f"{page.name} states figures outside its generated region: {found}"


def test_the_rendering_follows_the_run() -> None:
    run = copy.deepcopy(_run())
    run["reader_file_ratio"] = 0.5
    run["spreads"]["reader_file_ratio"] = {"median": 0.5, "min": 0.25, "max": 0.75, "trials": 7}
    del run["kms_pair_floor_ratio"]
    run["skipped"] = {"kms": "failed: OperationalError: database is locked"}
    readme = claims.render_readme(run)
    assert "0.50x [0.25..0.75] (7 trials) | ≥ 0.90 ✘" in readme
    assert "— (section kms skipped: failed: OperationalError: database is locked) | ≤ 2.0 (not measured)" in readme
    page = claims.render_benchmarks(run)
    assert "section kms skipped: failed: OperationalError" in page
    assert run["meta"]["when"].split("T")[0] in page  # the date of the run is stated with its figures


def test_check_fails_on_a_run_the_pages_do_not_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _run()
    assert claims.main(["--check"]) == 0
    run["encrypt_ratio"] = run["encrypt_ratio"] + 0.5
    other = tmp_path / "latest.json"
    other.write_text(json.dumps(run))
    assert claims.main(["--check", "--json", str(other)]) == 1
    assert "README.md differs" in capsys.readouterr().err
    assert claims.main(["--check", "--json", str(tmp_path / "missing.json")]) == 2
    assert "make bench" in capsys.readouterr().err  # says what to do, invents nothing
