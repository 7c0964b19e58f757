"""Parameter values in the aws CLI's forms: shorthand, JSON, ``file://``, ``fileb://`` and base64 blobs.

The aws CLI lets a structure be written as shorthand (``encryptionType=KMS,kmsKey=K``,
``EncryptionContextSubset={k=v}``) or JSON, reads any parameter from ``file://path``
(text) or ``fileb://path`` (bytes), and takes blobs as base64 text (CLI v2's default
``cli_binary_format``). Users paste the documents' command lines, so ecrcrypt accepts
the same spellings rather than its own.
"""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path
from typing import Any

import click

__all__ = ["blob", "load_text", "parse_shorthand", "structure", "structure_list"]


def _paramfile(value: str, prefix: str) -> bytes:
    try:
        return Path(value[len(prefix) :]).read_bytes()
    except OSError as exc:
        raise click.BadParameter(f"Unable to load paramfile {value}: {exc.strerror or exc}") from None


def load_text(value: str) -> str:
    """``file://path`` → the file's text; anything else unchanged."""
    return _paramfile(value, "file://").decode() if value.startswith("file://") else value


def blob(value: str, name: str) -> bytes:
    """A blob parameter: ``fileb://path`` (raw bytes) or base64 text (or ``file://`` holding base64)."""
    if value.startswith("fileb://"):
        return _paramfile(value, "fileb://")
    text = load_text(value).strip()
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise click.BadParameter(
            f"Invalid base64 for {name}: pass base64 text or fileb://<path> for raw bytes"
        ) from None


def structure(value: str, name: str) -> Any:
    """A structure parameter: JSON (``{...}`` / ``[...]``), ``file://`` JSON, or shorthand."""
    text = load_text(value).strip()
    if text[:1] in "{[":
        try:
            return json.loads(text)
        except ValueError as exc:
            raise click.BadParameter(f"Error parsing parameter '{name}': Invalid JSON: {exc}") from None
    try:
        return parse_shorthand(text)
    except ValueError as exc:
        raise click.BadParameter(f"Error parsing parameter '{name}': {exc}") from None


def structure_list(values: tuple[str, ...], name: str) -> list[Any]:
    """A list-of-structures parameter given as several shorthand items or one JSON list."""
    out: list[Any] = []
    for value in values:
        parsed = structure(value, name)
        out.extend(parsed if isinstance(parsed, list) else [parsed])
    return out


class _Shorthand:
    """Recursive descent over the aws CLI's shorthand syntax (the subset its docs use):

    ``k=v,k2=v2``, nested ``k={a=b}``, lists ``k=[a,b]`` and quoted values ``k="a,b"``.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def error(self, what: str) -> ValueError:
        return ValueError(f"Expected: {what}, received: {self.text[self.pos : self.pos + 1] or 'end of input'!r}")

    def peek(self) -> str:
        return self.text[self.pos : self.pos + 1]

    def pairs(self, closing: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        while True:
            key = self.scalar("=").strip()
            if not key:
                raise self.error("a key")
            if self.peek() != "=":
                raise self.error("'='")
            self.pos += 1
            out[key] = self.value()
            if self.peek() == ",":
                self.pos += 1
                continue
            if self.peek() == closing:
                return out
            raise self.error("',' or " + (repr(closing) if closing else "end of input"))

    def value(self) -> Any:
        c = self.peek()
        if c == "{":
            self.pos += 1
            if self.peek() == "}":
                self.pos += 1
                return {}
            inner = self.pairs("}")
            self.pos += 1
            return inner
        if c == "[":
            self.pos += 1
            items: list[Any] = []
            while self.peek() != "]":
                items.append(self.value())
                if self.peek() == ",":
                    self.pos += 1
                elif self.peek() != "]":
                    raise self.error("',' or ']'")
            self.pos += 1
            return items
        if c in "\"'":
            end = self.text.find(c, self.pos + 1)
            if end < 0:
                raise self.error(f"closing {c}")
            quoted = self.text[self.pos + 1 : end]
            self.pos = end + 1
            return quoted
        return self.scalar(",}]")

    def scalar(self, stops: str) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in stops:
            self.pos += 1
        return self.text[start : self.pos]


def parse_shorthand(text: str) -> dict[str, Any]:
    """``encryptionType=KMS,kmsKey=arn:...`` → ``{"encryptionType": "KMS", "kmsKey": "arn:..."}``."""
    return _Shorthand(text).pairs("")
