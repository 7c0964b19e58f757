"""Streaming ESDK messages: writer, reader, iterators, and the body-first writer.

Hot path design (why it is shaped like this): every stream owns one output
buffer of one frame and reuses it; frames are sealed with
``AESGCM.encrypt_into``/``decrypt_into`` straight from the caller's memory into
that buffer (or, when decrypting into a large enough caller buffer, straight into
it); the frame AAD and IV are packed in place with one ``struct.pack_into``. No
pending plaintext is concatenated or re-sliced: a write's bytes are sealed where
they lie, and at most one partial frame is copied aside.

This package's ``__init__`` is its public surface; the code lives in one module per concept:

* ``protocols``: what a destination and a source must offer (:class:`SupportsWrite`,
  :class:`SupportsRead`);
* ``hashing``: SHA-256 of the plaintext on a helper thread, beside the cipher;
* ``sealer``: the writers' hot path, including the held full final frame;
* ``writers``: :class:`EncryptingWriter`, :class:`BodyFirstWriter`, :func:`header_length`,
  :func:`message_header`;
* ``buffered``: signed and non-framed bodies, held whole until they verify;
* ``reader``: :class:`DecryptingReader`;
* ``owned``: output buffers the consumer owns, reused only when nobody holds them;
* ``encrypting_iterator`` and ``decrypting_iterator``: :func:`iter_encrypt`, :func:`iter_decrypt`;
* ``oneshot``: :func:`encrypt` and :func:`decrypt` of whole messages in memory;
* ``ranges``: :func:`decrypt_range`, random access to a plaintext byte range.

Layer: streams. May import the values and ``ecrcrypt.format``; nothing above.
"""

from __future__ import annotations

from ecrcrypt.streams.decrypting_iterator import iter_decrypt
from ecrcrypt.streams.encrypting_iterator import iter_encrypt
from ecrcrypt.streams.protocols import SupportsRead, SupportsWrite
from ecrcrypt.streams.reader import DecryptingReader
from ecrcrypt.streams.writers import BodyFirstWriter, EncryptingWriter, header_length, message_header

__all__ = [
    "BodyFirstWriter",
    "DecryptingReader",
    "EncryptingWriter",
    "SupportsRead",
    "SupportsWrite",
    "header_length",
    "iter_decrypt",
    "iter_encrypt",
    "message_header",
]
