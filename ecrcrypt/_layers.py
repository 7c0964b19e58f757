"""The layer table: which part of the package may import which (checked by the test suite).

Order is from the bottom up. A module may import modules of its own layer and of the layers
before it, never one after it. ``docs/architecture.md`` prints this same table, and
``tests/architecture/test_layers.py`` fails on the first import that goes the wrong way (and on
any import cycle between modules or between subpackages).

Each entry is ``(layer, module prefixes)``; a module belongs to the layer whose longest prefix
matches its dotted name. ``api`` is the package root alone (``ecrcrypt/__init__.py``, the public
surface): it re-exports the library layers, and the faces and the testing toolkit may use it.
"""

from __future__ import annotations

__all__ = ["LAYERS", "OPTIONAL_DEPENDENCIES", "layer_of"]

LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "values",
        (
            "ecrcrypt.errors",
            "ecrcrypt.arns",
            "ecrcrypt.digest",
            "ecrcrypt.context",
            "ecrcrypt.config",
            "ecrcrypt.keyprovider",
            "ecrcrypt._validate",
            "ecrcrypt._keyfile",
            "ecrcrypt._statefile",
            "ecrcrypt._aws_errors",
            "ecrcrypt._layers",
        ),
    ),
    ("format", ("ecrcrypt.format",)),
    ("streams", ("ecrcrypt.streams",)),
    ("authz", ("ecrcrypt.authz",)),
    ("kms", ("ecrcrypt.kms",)),
    ("providers", ("ecrcrypt.providers",)),
    ("store", ("ecrcrypt.store",)),
    ("ecr", ("ecrcrypt.ecr",)),
    ("api", ("ecrcrypt",)),
    ("faces", ("ecrcrypt.cli", "ecrcrypt.server", "ecrcrypt.demo")),
    ("testing", ("ecrcrypt.strategies", "ecrcrypt.testing")),
)

#: Third-party packages only optional extras bring; ``import ecrcrypt`` must not load them.
OPTIONAL_DEPENDENCIES = frozenset(
    {"boto3", "botocore", "click", "rich", "hypothesis", "starlette", "uvicorn", "psycopg", "psycopg_pool", "pytest"}
)
#: The cli extra's ``--query`` language.
OPTIONAL_DEPENDENCIES |= {"jmespath"}


def layer_of(module: str) -> int | None:
    """The index in :data:`LAYERS` of ``module`` (a dotted name), or ``None`` outside ecrcrypt."""
    best: tuple[int, int] | None = None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            matches = module == prefix or (prefix != "ecrcrypt" and module.startswith(prefix + "."))
            if matches and (best is None or len(prefix) > best[1]):
                best = (index, len(prefix))
    return None if best is None else best[0]
