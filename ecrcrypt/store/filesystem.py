"""The embedded default blob store: one file per object, committed by an atomic rename."""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from ecrcrypt.errors import BlobNotFoundError, ValidationError
from ecrcrypt.store.protocol import TMP_SUFFIX, BlobRangeReader, BlobWriter, validate_key, validate_prefix
from ecrcrypt.store.writer_base import BlobWriterBase, RangeReaderBase, check_range

__all__ = ["FilesystemBlobStore"]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _FileWriter(BlobWriterBase):
    """Writes a temporary file beside the target and renames it over the target on commit.

    The reserve is left as a hole (``seek``) and filled with ``os.pwrite`` at
    commit, after the buffered body has been flushed, so the body streams
    through a fixed-size buffer whatever the object's size.
    """

    def __init__(self, store: FilesystemBlobStore, key: str, reserve: int) -> None:
        super().__init__(reserve=reserve)
        self._target = store._path(key)
        self._tmp = self._target.with_name(f".{self._target.name}.{secrets.token_hex(8)}{TMP_SUFFIX}")
        for attempt in range(3):
            store._make_parent(self._target)
            try:
                fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
                break
            except FileNotFoundError:
                # A concurrent delete pruned the (then empty) directory: create it again.
                if attempt == 2:
                    raise
        self._file = open(fd, "wb", buffering=1 << 20)  # noqa: SIM115 - lifetime spans several calls
        if reserve:
            self._file.seek(reserve)

    def _write(self, data: memoryview) -> None:
        self._file.write(data)

    def _commit(self, reserved: bytes) -> None:
        self._file.flush()
        fd = self._file.fileno()
        if reserved:
            os.pwrite(fd, reserved, 0)
        os.fsync(fd)
        self._file.close()
        try:
            os.replace(self._tmp, self._target)
        except (IsADirectoryError, NotADirectoryError):
            raise ValidationError(
                f"blob key for {self._target.name!r} conflicts with a directory of other keys"
            ) from None
        _fsync_dir(self._target.parent)

    def _abort(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._tmp)


class _FileRangeReader(RangeReaderBase):
    """One open file descriptor for every read: a rename over the key or an unlink leaves the
    file this descriptor names untouched, so all reads see the version that was opened."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self._size = os.fstat(file.fileno()).st_size

    def _read(self, start: int, stop: int) -> bytes:
        out = bytearray(stop - start)
        view = memoryview(out)
        done = 0
        while done < len(out):
            n = os.preadv(self._file.fileno(), [view[done:]], start + done)
            if n == 0:  # truncated: cannot happen with rename-only updates
                break
            done += n
        return bytes(out[:done])

    def _close(self) -> None:
        self._file.close()


class FilesystemBlobStore:
    """Objects as files under ``root``; the embedded default.

    A key maps to the path ``root/<key>``. Writes go to a temporary file in the
    target's directory (same file system, so the rename is atomic), are fsynced,
    renamed over the target with ``os.replace`` and the directory is fsynced: a
    reader sees the old object or the new one, never a part, and a crash leaves at
    most a temporary that :meth:`list`/:meth:`exists` ignore and that opening the
    store removes once it is stale: not modified for ``stale_after`` seconds (an hour
    by default; ``clean_temporaries=False`` keeps them all). A temporary modified more
    recently may be another process's write in flight (a second ``Registry.open`` of
    the same directory while a push streams), whose commit would fail if its file
    vanished; a writer touches its temporary with every chunk, so only one silent for
    ``stale_after`` is taken for a crash's leftover.

    A key cannot also be a "directory" of other keys here (``a`` and ``a/b``),
    although S3 allows it; such a write raises :class:`ValidationError`.
    """

    def __init__(
        self, root: str | os.PathLike[str], *, clean_temporaries: bool = True, stale_after: float = 3600.0
    ) -> None:
        if isinstance(stale_after, bool) or not isinstance(stale_after, int | float) or not stale_after >= 0:
            raise ValidationError("stale_after must be a number of seconds >= 0")
        self._root = Path(root).absolute()
        self._root.mkdir(mode=0o700, parents=True, exist_ok=True)
        if clean_temporaries:
            self._clean_temporaries(stale_after)

    @property
    def root(self) -> Path:
        return self._root

    def __repr__(self) -> str:
        return f"FilesystemBlobStore({str(self._root)!r})"

    def _clean_temporaries(self, stale_after: float) -> None:
        cutoff = time.time() - stale_after
        for dirpath, _dirnames, filenames in os.walk(self._root):
            for name in filenames:
                if name.endswith(TMP_SUFFIX):
                    path = os.path.join(dirpath, name)
                    with contextlib.suppress(FileNotFoundError):
                        if os.stat(path).st_mtime <= cutoff:
                            os.unlink(path)

    def _path(self, key: str) -> Path:
        return self._root.joinpath(*validate_key(key).split("/"))

    def _make_parent(self, path: Path) -> None:
        """Create missing parent directories, fsyncing each new entry's parent so it survives a crash."""
        missing: list[Path] = []
        parent = path.parent
        while not parent.is_dir():
            missing.append(parent)
            parent = parent.parent
        for directory in reversed(missing):
            try:
                directory.mkdir(mode=0o700, exist_ok=True)  # private whatever the umask (it only removes bits)
            except (FileExistsError, NotADirectoryError):
                raise ValidationError(
                    f"blob key path {path.relative_to(self._root)} runs through an existing object"
                ) from None
            _fsync_dir(directory.parent)

    def open_write(self, key: str, *, reserve: int = 0) -> BlobWriter:
        return _FileWriter(self, validate_key(key), reserve)

    def open_read(self, key: str) -> BinaryIO:
        path = self._path(key)
        try:
            return open(path, "rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise BlobNotFoundError(f"no blob under key {key!r}") from None

    def open_ranges(self, key: str) -> BlobRangeReader:
        f = self.open_read(key)
        try:
            return _FileRangeReader(f)
        except BaseException:
            f.close()
            raise

    def read_range(self, key: str, offset: int, length: int) -> bytes:
        check_range(offset, length)
        with self.open_ranges(key) as reader:
            return reader.read_at(offset, length)

    def size(self, key: str) -> int:
        path = self._path(key)
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            raise BlobNotFoundError(f"no blob under key {key!r}") from None
        if not path.is_file():
            raise BlobNotFoundError(f"no blob under key {key!r}")
        return st.st_size

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            os.unlink(path)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return
        with contextlib.suppress(OSError):
            _fsync_dir(path.parent)
        # Prune directories left empty, so a later key may use the name (``a/b`` gone, ``a`` written).
        # rmdir never removes a non-empty directory, and writers recreate a pruned one.
        parent = path.parent
        while parent != self._root:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    def list(self, prefix: str = "") -> Iterator[str]:
        validate_prefix(prefix)
        # Walk only the deepest directory the prefix fully names, then filter by string prefix
        # (a prefix such as "layers/sha256:ab" is not a directory boundary).
        base_parts = prefix.split("/")[:-1]
        base = self._root.joinpath(*base_parts)
        keys: list[str] = []
        if base.is_dir():
            for dirpath, _dirnames, filenames in os.walk(base):
                rel = os.path.relpath(dirpath, self._root)
                head = "" if rel == "." else rel.replace(os.sep, "/") + "/"
                for name in filenames:
                    if name.endswith(TMP_SUFFIX):
                        continue
                    key = head + name
                    if key.startswith(prefix):
                        keys.append(key)
        keys.sort()
        return iter(keys)
