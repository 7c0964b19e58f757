"""Secret key files: created once, mode 0600, atomically (private).

Both the local KMS root key and the registry's service-managed key live in a file of
their own, outside the database they protect. The key is written to a private
temporary file, fsynced, then hard-linked into place: concurrent first opens agree
on one key (the link fails for all but one), no reader ever sees a half-written
file, and a crash leaves either no key file or a whole one.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

__all__ = ["load_or_create_key_file"]


def load_or_create_key_file(path: Path, length: int = 32) -> bytes | None:
    """The key in ``path`` (created with ``length`` random bytes when missing); ``None`` if malformed.

    The caller raises its own error for a malformed file, naming what the key is for.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            os.write(fd, secrets.token_bytes(length))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process won the race: use its key
        finally:
            tmp.unlink()
    data = path.read_bytes()
    return data if len(data) == length else None
