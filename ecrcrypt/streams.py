"""Streaming ESDK messages: writer, reader, iterators, and the body-first writer.

Hot path design (why it is shaped like this): every stream owns one output
buffer of one frame and reuses it; frames are sealed with
``AESGCM.encrypt_into``/``decrypt_into`` straight from the caller's memory into
that buffer (or, when decrypting into a large enough caller buffer, straight into
it); the frame AAD and IV are packed in place with one ``struct.pack_into``. No
pending plaintext is concatenated or re-sliced: a write's bytes are sealed where
they lie, and at most one partial frame is copied aside.

This module is the public surface; the code lives in private modules, one concept each:

* ``_streams_io``: what a destination and a source must offer (:class:`SupportsWrite`,
  :class:`SupportsRead`);
* ``_streams_layout``: frame prefixes packed and unpacked in place;
* ``_streams_hashing``: SHA-256 of the plaintext on a helper thread, beside the cipher;
* ``_streams_sealer``: the writers' hot path, including the held full final frame;
* ``_streams_writers``: :class:`EncryptingWriter`, :class:`BodyFirstWriter`, :func:`header_length`;
* ``_streams_buffered``: signed and non-framed bodies, held whole until they verify;
* ``_streams_reader``: :class:`DecryptingReader`;
* ``_streams_owned``: output buffers the consumer owns, reused only when nobody holds them;
* ``_streams_iter_encrypt`` and ``_streams_iter_decrypt``: :func:`iter_encrypt`, :func:`iter_decrypt`.
"""

from __future__ import annotations

from ecrcrypt._streams_io import SupportsRead, SupportsWrite
from ecrcrypt._streams_iter_decrypt import iter_decrypt
from ecrcrypt._streams_iter_encrypt import iter_encrypt
from ecrcrypt._streams_reader import DecryptingReader
from ecrcrypt._streams_writers import BodyFirstWriter, EncryptingWriter, header_length

__all__ = [
    "BodyFirstWriter",
    "DecryptingReader",
    "EncryptingWriter",
    "SupportsRead",
    "SupportsWrite",
    "header_length",
    "iter_decrypt",
    "iter_encrypt",
]
