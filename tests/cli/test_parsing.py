"""The aws CLI's parameter forms and option placement, checked on the parsers themselves."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from ecrcrypt.cli.main import hoist_global_options
from ecrcrypt.cli.params import blob, parse_shorthand, structure


def test_global_options_move_before_the_command() -> None:
    argv = ["kms", "list-grants", "--key-id", "k", "--region", "us-west-2", "--output=text", "--no-progress"]
    assert hoist_global_options(argv) == [
        "--region", "us-west-2", "--output=text", "--no-progress", "kms", "list-grants", "--key-id", "k",
    ]  # fmt: skip
    assert hoist_global_options(["kms", "encrypt", "--", "--region"]) == ["kms", "encrypt", "--", "--region"]


def test_list_parameters_take_several_values() -> None:
    argv = ["kms", "create-grant", "--operations", "Decrypt", "Encrypt", "--key-id", "k"]
    assert hoist_global_options(argv) == [
        "kms", "create-grant", "--operations", "Decrypt", "--operations", "Encrypt", "--key-id", "k",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("encryptionType=KMS,kmsKey=arn:aws:kms:r:1:key/x", {"encryptionType": "KMS",
          "kmsKey": "arn:aws:kms:r:1:key/x"}),
        ("EncryptionContextSubset={aws:ecr:arn=arn:aws:ecr:r:1:repository/a,b=c}",
         {"EncryptionContextSubset": {"aws:ecr:arn": "arn:aws:ecr:r:1:repository/a", "b": "c"}}),
        ("a=[x,y],b={}", {"a": ["x", "y"], "b": {}}),
        ('a="x,y",b=z', {"a": "x,y", "b": "z"}),
    ],
)  # fmt: skip
def test_shorthand(text: str, parsed: dict[str, object]) -> None:
    assert parse_shorthand(text) == parsed


@pytest.mark.parametrize("text", ["a", "a=b,", "=b", "a={b=c", 'a="x'])
def test_bad_shorthand_is_a_usage_error(text: str) -> None:
    with pytest.raises(click.BadParameter, match="Error parsing parameter '--x'"):
        structure(text, "--x")


def test_structure_from_json_and_file(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text('{"encryptionType": "AES256"}')
    assert structure(f"file://{path}", "--c") == structure('{"encryptionType": "AES256"}', "--c")


def test_blobs(tmp_path: Path) -> None:
    path = tmp_path / "b"
    path.write_bytes(b"\x00\xff")
    assert blob(f"fileb://{path}", "--b") == b"\x00\xff"
    assert blob("AP8=", "--b") == b"\x00\xff"
    with pytest.raises(click.BadParameter, match="Invalid base64"):
        blob("not base64!", "--b")
