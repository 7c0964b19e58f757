"""``--output json|table|text`` and ``--query``, as the aws CLI prints them."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ecrcrypt.cli.output import QueryError, render
from tests.cli.support import ok, run

RESPONSE = {
    "Grants": [
        {"GrantId": "g1", "Operations": ["Decrypt", "Encrypt"], "CreationDate": datetime(2026, 1, 2, tzinfo=UTC)},
        {"GrantId": "g2", "Operations": ["Decrypt"], "Name": "n"},
    ],
    "Truncated": False,
    "Blob": b"\x00\xff",
}


def _render(output: str, query: str | None = None) -> str:
    out = io.StringIO()
    render(RESPONSE, output=output, query=query, title="ListGrants", stream=out)
    return out.getvalue()


def test_json_prints_iso_dates_and_base64_blobs() -> None:
    text = _render("json")
    assert '"CreationDate": "2026-01-02T00:00:00+00:00"' in text
    assert '"Blob": "AP8="' in text
    assert text.startswith('{\n    "Grants"')  # the aws CLI's 4-space indent


def test_text_follows_the_aws_cli_text_format() -> None:
    assert _render("text").splitlines() == [
        "AP8=\tFalse",
        "GRANTS\t2026-01-02T00:00:00+00:00\tg1\t",
        "OPERATIONS\tDecrypt",
        "OPERATIONS\tEncrypt",
        "GRANTS\t\tg2\tn",
        "OPERATIONS\tDecrypt",
    ]
    assert _render("text", "Grants[].GrantId") == "g1\tg2\n"
    assert _render("text", "Truncated") == "False\n"


def test_table_has_a_title_nested_sections_and_every_value() -> None:
    lines = _render("table").splitlines()
    assert "ListGrants" in lines[1] and lines[1].startswith("| ") and lines[2].startswith("+-")
    assert len({len(line) for line in lines}) == 1  # one width: the boxes close
    grants = next(line for line in lines if "Grants" in line and "ListGrants" not in line)
    assert grants.startswith("|| ")  # a nested section is one level deeper
    operations = next(line for line in lines if "Operations" in line)
    assert operations.startswith("||| ")
    for value in ("g1", "g2", "Decrypt", "Truncated", "2026-01-02T00:00:00+00:00"):
        assert any(value in line for line in lines)


def test_a_bad_query_is_refused() -> None:
    with pytest.raises(QueryError, match="Bad value for --query"):
        _render("json", "Grants[?")


def test_output_and_query_through_the_console_script(tmp_path: Path) -> None:
    reg = tmp_path / "reg"
    ok("--dir", str(reg), "init")
    key = ok("kms", "create-key", "--query", "KeyMetadata.KeyId", registry=reg)
    text = run(
        "kms",
        "describe-key",
        "--key-id",
        key,
        "--output",
        "text",
        "--query",
        "KeyMetadata.[KeyId,KeyState]",
        registry=reg,
    )
    assert text.stdout == f"{key}\tEnabled\n"
    table = run("--output", "table", "kms", "list-keys", registry=reg)
    assert table.status == 0 and "ListKeys" in table.stdout and key in table.stdout
