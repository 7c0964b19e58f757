"""``st.from_type`` for every public type, or docs/testing.md says it is not supported.

The supported list is read from the page, so the page, the registrations and ``ecrcrypt.__all__``
cannot drift apart: a new public class fails here until it gets a strategy or a line in the docs.
"""

from __future__ import annotations

import enum
import inspect
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ecrcrypt
from ecrcrypt import strategies as es
from ecrcrypt.ecr.types import check_tag
from ecrcrypt.errors import EcrCryptError
from tests.docs.markdown_blocks import ROOT

_PAGE = (ROOT / "docs" / "testing.md").read_text()
_SECTION = _PAGE[_PAGE.index("## `st.from_type`") :].split("\n## ", 1)[0]
_SUPPORTED_TEXT, _UNSUPPORTED_TEXT = _SECTION.split("Every other public type is not supported", 1)
SUPPORTED = re.findall(r"`(\w+)`", _SUPPORTED_TEXT.split("\n", 1)[1])
UNSUPPORTED = re.findall(r"`(\w+)`", _UNSUPPORTED_TEXT)
PUBLIC_CLASSES = {name for name in ecrcrypt.__all__ if inspect.isclass(getattr(ecrcrypt, name))}


def test_every_public_class_is_either_supported_or_documented_not_to_be() -> None:
    supported = set(SUPPORTED) - {"hypothesis"}  # the entry point's name, not a type
    unsupported = set(UNSUPPORTED) & PUBLIC_CLASSES  # the page also names strategies (data_keys)
    assert not supported & unsupported, supported & unsupported
    assert supported <= PUBLIC_CLASSES, supported - PUBLIC_CLASSES
    missing = PUBLIC_CLASSES - supported - unsupported
    assert not missing, (
        f"public classes neither given a strategy nor listed as unsupported in docs/testing.md: {missing}"
    )


@pytest.mark.parametrize("name", sorted(set(SUPPORTED) & PUBLIC_CLASSES))
def test_from_type_draws_valid_instances(name: str) -> None:
    cls = getattr(ecrcrypt, name)

    @settings(max_examples=25, database=None)
    @given(st.from_type(cls))
    def check(value: object) -> None:
        assert type(value) is cls
        if issubclass(cls, enum.Enum):
            return
        parse = getattr(cls, "parse", None)
        if parse is not None:
            assert parse(str(value)) == value
        to_api = getattr(value, "to_api", None)
        if to_api is not None:
            assert isinstance(to_api(), dict | str)

    check()


def test_unsupported_types_are_not_registered() -> None:
    # A registration for a type the docs call unsupported would make the page wrong.
    from hypothesis.strategies._internal.types import _global_type_lookup

    for name in set(UNSUPPORTED) & PUBLIC_CLASSES:
        assert getattr(ecrcrypt, name) not in _global_type_lookup, name


@given(es.image_tags())
def test_image_tags_are_tags_ecr_accepts(tag: str) -> None:
    assert check_tag(tag) == tag and 1 <= len(tag) <= 128


@given(es.image_identifiers())
def test_image_identifiers_name_an_image(ident: ecrcrypt.ImageIdentifier) -> None:
    api = ident.to_api()
    assert api and set(api) <= {"imageDigest", "imageTag"}


def test_exceptions_are_one_documented_family() -> None:
    assert issubclass(ecrcrypt.EcrCryptError, Exception) and ecrcrypt.EcrCryptError is EcrCryptError
    assert "EcrCryptError" in UNSUPPORTED
