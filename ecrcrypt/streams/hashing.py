"""SHA-256 of a stream's plaintext, computed beside the cipher (private to :mod:`ecrcrypt.streams`).

SHA-256 (``compute_sha256=True``): ``hashlib`` releases the GIL on large updates
while cryptography's AES-GCM keeps it, so the hash runs on a helper thread while
this thread encrypts; with the digest on, SHA-256 (≈1.65 GB/s) rather than AES is
the limit, and the encryption hides behind it.

The pool and the batching that make that overlap pay are one concern, used by the
writers and the reader alike, hence this module.
"""

from __future__ import annotations

import hashlib
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor

from ecrcrypt.digest import Digest

# Below this many bytes a hand-off to the hashing thread costs more than it saves.
_ASYNC_HASH_MIN = 256 * 1024
_HASH_BATCH = 2 * 1024 * 1024
_DEFER_MIN = 64 * 1024


_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_pid = 0  # the process that made ``_pool``


def _hash_pool() -> ThreadPoolExecutor:
    global _pool, _pool_pid
    with _pool_lock:
        pid = os.getpid()
        if _pool is None or _pool_pid != pid:
            # A forked child inherits the parent's pool but none of its threads: work
            # submitted there would never run. The at-fork hook below drops the pool in
            # the child; the pid check covers a fork that bypassed Python's hooks.
            _pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="ecrcrypt-sha256")
            _pool_pid = pid
        return _pool


def _reset_after_fork() -> None:
    """In a forked child: forget the parent's pool and take a fresh lock (the parent's may
    have been held by a thread that does not exist here)."""
    global _pool, _pool_lock
    _pool_lock = threading.Lock()
    _pool = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


class _Hasher:
    """SHA-256 over a sequence of buffers, hashed in batches on the pool, in order.

    Batching matters: each hand-off to the worker costs a few thread wake-ups, so
    buffers are grouped until :data:`_HASH_BATCH` bytes are pending. A buffer handed
    to :meth:`defer` must stay unchanged until :meth:`wait` returns or two more
    batches were submitted; :meth:`update` submits at once (then only until
    :meth:`wait`).
    """

    __slots__ = ("_future", "_pending", "_pending_bytes", "_sha")

    def __init__(self) -> None:
        self._sha = hashlib.sha256()
        self._future: Future[None] | None = None
        self._pending: list[memoryview] = []
        self._pending_bytes = 0

    def defer(self, view: memoryview) -> None:
        if len(view) < _DEFER_MIN:
            # Small buffers: hashing inline is cheaper than queueing them (and bounded).
            self.wait()
            self._sha.update(view)
            return
        self._pending.append(view)
        self._pending_bytes += len(view)
        if self._pending_bytes >= _HASH_BATCH:
            self._submit()

    def update(self, view: memoryview) -> None:
        self.defer(view)
        self._submit()  # no-op when defer() hashed inline

    def _submit(self) -> None:
        views, size = self._pending, self._pending_bytes
        if not views:
            return
        self._pending, self._pending_bytes = [], 0
        self._wait_in_flight()
        sha = self._sha
        if size < _ASYNC_HASH_MIN:
            for v in views:
                sha.update(v)
            return
        started = threading.Event()

        def job() -> None:
            started.set()
            for v in views:
                sha.update(v)  # releases the GIL for each large buffer

        self._future = _hash_pool().submit(job)
        # Wait until the worker is inside update() (GIL released) before this thread
        # starts an AES call that keeps the GIL: otherwise the two would not overlap.
        started.wait()

    def _wait_in_flight(self) -> None:
        future, self._future = self._future, None
        if future is not None:
            future.result()

    def wait(self) -> None:
        self._submit()
        self._wait_in_flight()

    def digest(self) -> Digest:
        self.wait()
        return Digest(self._sha.hexdigest())
