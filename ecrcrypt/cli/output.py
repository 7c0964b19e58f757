"""Printing a response as the aws CLI does: ``--output json|table|text`` after ``--query``.

The response is the library's own ``to_api()`` structure (boto3's parsed shape:
``datetime`` and ``bytes`` values). As in the aws CLI v2, timestamps print in ISO 8601
and blobs in base64, and ``--query`` (JMESPath) applies to that JSON form before it is
formatted. ``text`` follows awscli's text formatter (tab-separated, a row per
structure, nested lists prefixed with their upper-cased key) so ``--output text
--query X`` feeds shell pipelines the way users expect.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import datetime
from typing import IO, Any

import jmespath
from jmespath.exceptions import JMESPathError

__all__ = ["OUTPUT_FORMATS", "QueryError", "jsonable", "render"]

OUTPUT_FORMATS = ("json", "table", "text")


class QueryError(ValueError):
    """A ``--query`` that is not valid JMESPath (a usage error)."""


def jsonable(value: Any) -> Any:
    """boto3-shaped values → JSON values: datetimes to ISO 8601, bytes to base64."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    return value


def render(response: Mapping[str, Any] | None, *, output: str, query: str | None, title: str, stream: IO[str]) -> None:
    """Write ``response`` (``None``: an operation with an empty response prints nothing)."""
    if response is None:
        return
    data: Any = jsonable(response)
    if query is not None:
        try:
            data = jmespath.search(query, data)
        except JMESPathError as exc:
            raise QueryError(f"Bad value for --query {query}: {exc}") from None
    if output == "text":
        _text(data, stream)
    elif output == "table":
        _table(data, title, stream)
    else:
        # aws CLI v2: 4-space indent, non-ASCII kept; a null query result prints "null".
        stream.write(json.dumps(data, indent=4, ensure_ascii=False) + "\n")


# -- text: awscli/text.py's algorithm ----------------------------------------------------
def _scalar(value: Any) -> str:
    return str(value)


def _text(item: Any, stream: IO[str], identifier: str | None = None, scalar_keys: list[str] | None = None) -> None:
    if isinstance(item, dict):
        _text_dict(item, stream, identifier, scalar_keys)
    elif isinstance(item, list):
        _text_list(item, stream, identifier)
    elif item is not None or identifier is None:
        stream.write(_scalar(item) + "\n")


def _text_list(items: list[Any], stream: IO[str], identifier: str | None) -> None:
    if not items:
        return
    if any(isinstance(el, dict) for el in items):
        keys = sorted({k for el in items if isinstance(el, dict) for k, v in el.items() if not _nested(v)})
        for el in items:
            _text(el, stream, identifier, keys)
    elif any(isinstance(el, list) for el in items):
        scalars = [el for el in items if not _nested(el)]
        if scalars:
            _text_scalars(scalars, stream, identifier)
        for el in items:
            if _nested(el):
                _text(el, stream, identifier)
    else:
        _text_scalars(items, stream, identifier)


def _text_scalars(items: list[Any], stream: IO[str], identifier: str | None) -> None:
    if identifier is not None:
        for el in items:
            stream.write(f"{identifier.upper()}\t{_scalar(el)}\n")
    else:
        stream.write("\t".join(_scalar(el) for el in items) + "\n")


def _nested(value: Any) -> bool:
    return isinstance(value, dict | list)


def _text_dict(item: dict[str, Any], stream: IO[str], identifier: str | None, keys: list[str] | None) -> None:
    scalars: list[str] = []
    nested: list[tuple[str, Any]] = []
    if keys is None:
        for k, v in sorted(item.items()):
            if _nested(v):
                nested.append((k, v))
            else:
                scalars.append(_scalar(v))
    else:
        scalars = [_scalar(item.get(k, "")) for k in keys]
        nested = [(k, item[k]) for k in sorted(set(item) - set(keys))]
    if scalars:
        if identifier is not None:
            scalars.insert(0, identifier.upper())
        stream.write("\t".join(scalars) + "\n")
    for k, v in nested:
        _text(v, stream, k)


# -- table: nested boxed sections, as the aws CLI's table output -------------------------
_TITLE, _RULE = "\x01", "\x02"


def _table(data: Any, title: str, stream: IO[str]) -> None:
    rows: list[tuple[int, str, str]] = []  # (depth, kind, text)
    _section(data, title, 1, rows)
    width = max(len(text) + 2 * depth + 2 for depth, _, text in rows)
    stream.write("-" * width + "\n")
    for depth, kind, text in rows:
        inner = width - 2 * depth - 2
        if kind == _RULE:
            stream.write("|" * (depth - 1) + "+" + "-" * (width - 2 * depth) + "+" + "|" * (depth - 1) + "\n")
        else:
            body = text.center(inner) if kind == _TITLE else text.ljust(inner)
            stream.write("|" * depth + " " + body + " " + "|" * depth + "\n")
    stream.write("-" * width + "\n")


def _section(data: Any, title: str, depth: int, rows: list[tuple[int, str, str]]) -> None:
    rows.append((depth, _TITLE, title))
    rows.append((depth, _RULE, ""))
    if isinstance(data, dict):
        scalars = [(k, v) for k, v in data.items() if not _nested(v)]
        if scalars:
            kw = max(len(k) for k, _ in scalars)
            rows.extend((depth, "", f"{k.ljust(kw)} | {_scalar(v)}") for k, v in scalars)
        for k, v in data.items():
            if _nested(v):
                _section(v, k, depth + 1, rows)
    elif isinstance(data, list):
        dicts = [el for el in data if isinstance(el, dict)]
        if dicts:
            cols = sorted({k for r in dicts for k, v in r.items() if not _nested(v)})
            if cols:
                widths = [max([len(c)] + [len(_scalar(r.get(c, ""))) for r in dicts]) for c in cols]
                rows.append((depth, "", " | ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))))
                rows.extend(
                    (depth, "", " | ".join(_scalar(r.get(c, "")).ljust(w) for c, w in zip(cols, widths, strict=True)))
                    for r in dicts
                )
            for r in dicts:
                for k, v in r.items():
                    if _nested(v):
                        _section(v, k, depth + 1, rows)
        rows.extend((depth, "", _scalar(el)) for el in data if not _nested(el))
    else:
        rows.append((depth, "", _scalar(data)))
