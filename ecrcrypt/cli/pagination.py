"""The aws CLI's pagination of list operations: all pages by default, ``--max-items`` / ``--starting-token``.

For an operation botocore marks as pageable (KMS ListKeys, ListAliases, ListGrants,
ListRetirableGrants: ``Marker`` in, ``NextMarker`` / ``Truncated`` out; ECR
DescribeRepositories: ``nextToken`` in and out), the aws CLI calls it until the last page
and prints the merged result key alone (``{"Grants": [...]}``); with ``--max-items N`` it
stops after N items and adds an opaque ``NextToken`` for ``--starting-token``;
``--page-size`` is the page size of each call. Naming the API's own page parameters
(``--limit`` / ``--marker``, ``--max-results`` / ``--next-token``), or ``--no-paginate``,
makes one call and prints that page as the API returns it.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import click

__all__ = ["page_options", "paginate"]

F = TypeVar("F", bound=Callable[..., Any])


def page_options(*, limit: str = "--limit", marker: str = "--marker") -> Callable[[F], F]:
    """The paging flags of a pageable command: the aws CLI's, plus the API's own (``limit`` /
    ``marker`` name them, e.g. ECR's ``--max-results`` / ``--next-token``; the function still
    receives them as ``limit`` and ``marker``)."""

    def decorate(fn: F) -> F:
        for option in reversed(
            (
                click.option(
                    "--max-items", type=click.IntRange(min=1), default=None, help="stop after this many items"
                ),
                click.option("--starting-token", default=None, help="the NextToken of an earlier --max-items output"),
                click.option("--page-size", type=click.IntRange(min=1), default=None, help="items per call"),
                click.option("--no-paginate", is_flag=True, help="one call; print the page as the API returns it"),
                click.option(limit, "limit", type=int, default=None, help="the API's page size (implies one call)"),
                click.option(marker, "marker", default=None, help="the API's page token (implies one call)"),
            )
        ):
            fn = option(fn)
        return fn

    return decorate


def _decode(token: str) -> tuple[str | None, int]:
    try:
        data = json.loads(base64.b64decode(token, validate=True))
        marker, skip = data.get("Marker"), int(data.get("skip", 0))
    except (binascii.Error, ValueError, AttributeError, TypeError):
        raise click.BadParameter(f"Bad --starting-token {token!r}: pass the NextToken of an earlier call") from None
    if marker is not None and not isinstance(marker, str):
        raise click.BadParameter(f"Bad --starting-token {token!r}")
    return marker, skip


def _encode(marker: str | None, skip: int) -> str:
    return base64.b64encode(json.dumps({"Marker": marker, "skip": skip}).encode()).decode()


def paginate(
    call: Callable[[int | None, str | None], Mapping[str, Any]],
    result_key: str,
    *,
    next_key: str = "NextMarker",
    max_items: int | None,
    starting_token: str | None,
    page_size: int | None,
    no_paginate: bool,
    limit: int | None,
    marker: str | None,
) -> dict[str, Any]:
    """Run ``call(limit, marker)`` (one API page as ``to_api()`` gives it) as the aws CLI would."""
    if no_paginate or limit is not None or marker is not None:
        return dict(call(limit if limit is not None else page_size, marker))
    items: list[Any] = []
    next_marker, skip = _decode(starting_token) if starting_token else (None, 0)
    while True:
        page_marker = next_marker
        page = call(page_size, page_marker)
        page_items = list(page.get(result_key, []))[skip:]
        consumed = skip
        skip = 0
        for item in page_items:
            if max_items is not None and len(items) == max_items:
                # Stopped inside this page: resume at the same page, past what was printed.
                return {result_key: items, "NextToken": _encode(page_marker, consumed)}
            items.append(item)
            consumed += 1
        # KMS says Truncated and NextMarker; ECR only nextToken, present while more pages follow.
        next_marker = page.get(next_key) if page.get("Truncated", True) else None
        if next_marker is None:
            return {result_key: items}
        if max_items is not None and len(items) == max_items:
            return {result_key: items, "NextToken": _encode(next_marker, 0)}
