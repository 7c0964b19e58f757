"""The file-like encrypting writers: :class:`EncryptingWriter` and :class:`BodyFirstWriter` (private).

Public through :mod:`ecrcrypt.streams`. Both share the write/close/sticky-error plumbing
of ``_WriterBase`` and seal through one ``_FrameSealer``; they differ only in where the
header comes from (written at construction, or made after ``close()``), and
:func:`header_length` sizes the latter in advance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import TracebackType

from ecrcrypt.context import EncryptionContext
from ecrcrypt.digest import Digest
from ecrcrypt.errors import StreamClosedError, ValidationError
from ecrcrypt.format.header import header_length_v2
from ecrcrypt.format.message import (
    DEFAULT_FRAME_LENGTH,
    Sealer,
    check_frame_length,
    encryption_context,
    start_message,
)
from ecrcrypt.keyprovider import EncryptedDataKey, KeyProvider
from ecrcrypt.streams.protocols import SupportsWrite
from ecrcrypt.streams.sealer import _FrameSealer


class _WriterBase:
    """Write/close/sticky-error plumbing shared by the two writers."""

    _frames: _FrameSealer

    def __init__(self) -> None:
        self._closed = False
        self._finished = False  # the final frame was written: the body is a complete message body
        self._failed: BaseException | None = None
        self.sha256: Digest | None = None

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def plaintext_length(self) -> int:
        return self._frames.plaintext_length

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        """Nothing to flush: every complete frame is written when it is sealed."""

    def _check_usable(self) -> None:
        if self._failed is not None:
            raise StreamClosedError("the stream failed earlier and cannot be used") from self._failed
        if self._closed:
            raise StreamClosedError("write to a closed encrypting stream")

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Encrypt ``data``; complete frames go to the destination at once. Returns ``len(data)``."""
        self._check_usable()
        view = memoryview(data).cast("B")
        if not view:
            return 0
        try:
            self._frames.write(view)
        except BaseException as exc:
            self._failed = exc
            raise
        return len(view)

    def close(self) -> None:
        """Write the final frame. Does NOT close the destination (the caller owns it).

        Closing twice is a no-op; after close every ``write`` raises
        :class:`StreamClosedError`.
        """
        if self._closed:
            return
        self._check_usable()
        try:
            self.sha256 = self._frames.finish()
        except BaseException as exc:
            self._failed = exc
            raise
        self._finished = True
        self._closed = True
        self._frames.recycle()

    def abandon(self) -> None:
        """Stop without writing the final frame: what was written is not a valid message."""
        self._closed = True
        self._frames.recycle()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abandon()


class EncryptingWriter(_WriterBase):
    """A file-like writer producing one ESDK v2 message (0x0478, framed) on ``destination``.

    The header goes out at construction (the provider is called then); each complete
    frame goes out as soon as it is known not to be the last; ``close()`` writes the
    final frame and does **not** close ``destination``. Leaving a ``with`` block by
    an exception writes no final frame, so the partial output never decrypts.
    ``sha256`` (when ``compute_sha256``) is the plaintext's digest after close.
    """

    def __init__(
        self,
        destination: SupportsWrite,
        *,
        provider: KeyProvider,
        context: Mapping[str, str],
        frame_length: int = DEFAULT_FRAME_LENGTH,
        compute_sha256: bool = False,
    ) -> None:
        super().__init__()
        sealer, header, ctx = start_message(provider, context, frame_length)
        self.context: EncryptionContext = ctx
        self.frame_length = frame_length
        self._header_length = len(header)
        self._frames = _FrameSealer(destination, sealer, compute_sha256)
        destination.write(memoryview(header))

    @property
    def ciphertext_length(self) -> int:
        return self._header_length + self._frames.body_length

    def __enter__(self) -> EncryptingWriter:
        return self


class BodyFirstWriter(_WriterBase):
    """Writes only the body (frames) of a message whose header is made afterwards.

    For one-pass layer uploads where the encryption context contains the digest of
    the very content being written: frames are sealed with ``data_key`` and a fresh
    message id now; :meth:`header` serializes the header (commit key, context, EDKs,
    header tag) once the context is known, and ``header ‖ body`` is an ordinary
    message. :func:`header_length` says how many bytes to reserve in front.
    ``close()`` does not close ``destination``.

    A body can be written by several writers in turn, even in several processes (an
    upload spanning HTTP requests): :meth:`suspend` stops without a final frame and
    returns the plaintext not yet sealed; a writer made with the same ``data_key``,
    ``message_id`` and ``sealed_frames=frames_emitted`` continues the same body once
    that plaintext is written to it first. The caller keeps the pending plaintext
    secret in between (it is plaintext) and must never let two writers continue from
    the same point: a frame's nonce is its sequence number.
    """

    def __init__(
        self,
        destination: SupportsWrite,
        *,
        data_key: bytes,
        frame_length: int = DEFAULT_FRAME_LENGTH,
        compute_sha256: bool = False,
        message_id: bytes | None = None,
        sealed_frames: int = 0,
    ) -> None:
        super().__init__()
        check_frame_length(frame_length)
        if sealed_frames < 0 or (sealed_frames and message_id is None):
            raise ValidationError("sealed_frames continues a given message_id and cannot be negative")
        self._sealer = Sealer.for_data_key(data_key, frame_length, message_id=message_id)
        self.frame_length = frame_length
        self._frames = _FrameSealer(destination, self._sealer, compute_sha256, sealed_frames)

    @property
    def message_id(self) -> bytes:
        return self._sealer.message_id

    @property
    def frames_emitted(self) -> int:
        """Regular frames of the body written to the destination so far (by this writer and its predecessors)."""
        return self._frames.frames_emitted

    def suspend(self) -> bytes:
        """Stop without the final frame; returns the pending plaintext (less than one frame, or one
        full frame) that the next writer of this body must be given first. See the class docstring."""
        self._check_usable()
        self._closed = True
        return self._frames.take_pending()

    @property
    def body_length(self) -> int:
        return self._frames.body_length

    def header(self, *, context: Mapping[str, str], encrypted_data_keys: Sequence[EncryptedDataKey]) -> bytes:
        """The serialized v2 header for this body; its length is :func:`header_length` of the same inputs."""
        if self._failed is not None:
            raise StreamClosedError("the body failed and has no header") from self._failed
        if not self._finished:
            # Also after abandon() (an exception in the ``with`` block): the body lacks its
            # final frame, and a header would make the torn body look like a message.
            raise StreamClosedError("the header is available only after a successful close()")
        return self._sealer.header(encryption_context(context), tuple(encrypted_data_keys))

    def __enter__(self) -> BodyFirstWriter:
        return self


def header_length(
    *,
    context: Mapping[str, str],
    encrypted_data_keys: Sequence[EncryptedDataKey],
    frame_length: int = DEFAULT_FRAME_LENGTH,
) -> int:
    """Bytes of the v2 (0x0478, framed) header, tag included, for these inputs."""
    check_frame_length(frame_length)
    return header_length_v2(encryption_context(context), tuple(encrypted_data_keys))


def message_header(
    *,
    data_key: bytes,
    message_id: bytes,
    context: Mapping[str, str],
    encrypted_data_keys: Sequence[EncryptedDataKey],
    frame_length: int = DEFAULT_FRAME_LENGTH,
) -> bytes:
    """The v2 header of the message whose body ``data_key`` and ``message_id`` sealed.

    ESDK v2 derives the body's key from the data key and the message id alone, so one body can be
    given another header -- another context, the data key wrapped again -- without touching a
    frame: how a layer is re-wrapped for another repository, or a resumed upload's inner message
    gets its header. The header authenticates with the same derived key as the body.
    """
    check_frame_length(frame_length)
    sealer = Sealer.for_data_key(data_key, frame_length, message_id=message_id)
    return sealer.header(encryption_context(context), tuple(encrypted_data_keys))
