"""The ``ecrcrypt`` command line (a face): the aws CLI's commands over a registry directory.

Layer: faces. Needs the ``cli`` extra (click, rich, jmespath). The console script is
installed with the core package, so without the extra it prints a one-line install
hint instead of a traceback: the library stays free of CLI dependencies for the
programs that embed it (a registry server needs neither click nor rich).
"""

from __future__ import annotations

import importlib.util
import sys
from typing import NoReturn

__all__ = ["CLI_REQUIREMENTS", "main", "missing_requirements"]

#: The import names of the ``cli`` extra.
CLI_REQUIREMENTS = ("click", "rich", "jmespath")


def missing_requirements() -> list[str]:
    return [name for name in CLI_REQUIREMENTS if importlib.util.find_spec(name) is None]


if not missing_requirements():
    from ecrcrypt.cli.main import main as _main


def main() -> NoReturn:
    """The ``ecrcrypt`` console script."""
    missing = missing_requirements()
    if missing:
        print(
            f"ecrcrypt: the command line needs {', '.join(missing)}: pip install 'ecrcrypt[cli]'",
            file=sys.stderr,
        )
        sys.exit(255)
    _main()
