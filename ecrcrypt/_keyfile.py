"""Secret key files: created once, mode 0600, atomically; read without ever creating (private).

Both the local KMS root key and the registry's service-managed key live in a file of
their own, outside the database they protect. The key is written to a private
temporary file, fsynced, then hard-linked into place: concurrent creators agree
on one key (the link fails for all but one), no reader ever sees a half-written
file, and a crash leaves either no key file or a whole one.

Creating and reading are separate calls on purpose: a key file that went missing
must be reported, not replaced -- a new key would make everything wrapped under the
old one undecryptable without a word. Only an explicit create path calls
:func:`create_key_file`.

A key is named in manifests and metadata by its *fingerprint*: an HMAC of a fixed
label under the key itself, which identifies the key without revealing anything
about it (HMAC is a PRF), so a replaced or corrupted key file is told apart from
the right one without storing the key anywhere else.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from ecrcrypt._statefile import fsync_dir, write_new_private_file

__all__ = ["create_key_file", "key_fingerprint", "load_or_create_key_file", "read_key_file"]

_FINGERPRINT_LABEL = b"ecrcrypt key fingerprint v1:"


def key_fingerprint(key: bytes, purpose: str) -> str:
    """A 128-bit hex identifier of ``key`` for ``purpose`` (``"root-key"``, ``"service-key"``)."""
    return hmac.new(key, _FINGERPRINT_LABEL + purpose.encode(), hashlib.sha256).hexdigest()[:32]


def create_key_file(path: Path, length: int = 32) -> bytes:
    """Create ``path`` holding ``length`` random bytes (mode 0600 whatever the umask); the key in it.

    When the file already exists (another creator won the race) its content is returned
    unchanged, whatever it is: the caller checks it as it checks any key it reads.
    """
    if not path.exists():
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        write_new_private_file(tmp, secrets.token_bytes(length))
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process won the race: use its key
        finally:
            tmp.unlink()
        fsync_dir(path.parent)
    return path.read_bytes()


def read_key_file(path: Path) -> bytes:
    """The bytes of ``path``; ``FileNotFoundError`` (never a new key) when it is missing."""
    return path.read_bytes()


def load_or_create_key_file(path: Path, length: int = 32) -> bytes | None:
    """The key in ``path``, created when missing; ``None`` if malformed.

    Only for stores that are new by construction (a first open with nothing to lose);
    anything that may be reopened after a loss uses :func:`read_key_file` and creates
    with :func:`create_key_file` on an explicit create path only.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    data = create_key_file(path, length)
    return data if len(data) == length else None
