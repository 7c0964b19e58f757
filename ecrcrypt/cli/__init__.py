"""The ``ecrcrypt`` command line (a face): click commands over a registry directory.

Layer: faces. May import every layer below; nothing imports it. Needs the ``cli`` extra.
"""

from ecrcrypt.cli.commands import main

__all__ = ["main"]
