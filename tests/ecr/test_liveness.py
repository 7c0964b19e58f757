"""Intent owners: this process is alive, a dead or reused pid is not, other hosts wait for the grace period."""

from __future__ import annotations

import os

from ecrcrypt.ecr.liveness import ABANDONED, current_owner, owner_alive


def _owner_of_a_finished_child() -> str:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.write(write_end, current_owner().encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as f:
        owner = f.read().decode()
    os.waitpid(pid, 0)
    return owner


def test_this_process_is_alive_and_a_finished_one_is_not() -> None:
    assert owner_alive(current_owner(), age=1e9, grace=0)
    child = _owner_of_a_finished_child()
    assert child != current_owner()
    assert not owner_alive(child, age=0, grace=1e9)


def test_a_reused_pid_is_not_the_original_process() -> None:
    host, boot, namespace, pid, _start = current_owner().split("|")
    assert not owner_alive("|".join((host, boot, namespace, pid, "12345")), age=0, grace=1e9)
    # Another boot under this host name: this host before a reboot, or another machine of the same
    # name whose process runs right now -- only the grace period may decide.
    other_boot = "|".join((host, "another-boot", namespace, pid, _start))
    assert owner_alive(other_boot, age=0, grace=3600)
    assert not owner_alive(other_boot, age=3600, grace=3600)


def test_owners_that_cannot_be_checked_wait_for_the_grace_period() -> None:
    host, boot, _namespace, pid, start = current_owner().split("|")
    for owner in ("elsewhere|b|n|1|1", "|".join((host, boot, "pid:[0]", pid, start)), "garbage"):
        assert owner_alive(owner, age=10, grace=60)
        assert not owner_alive(owner, age=61, grace=60)
    assert not owner_alive(ABANDONED, age=0, grace=1e9)
