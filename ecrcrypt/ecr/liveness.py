"""Which process holds an intent, and whether that process can still finish it.

Recovery and garbage collection must never undo work another process is doing right
now: a repository being created, a blob committed but not yet recorded. Each intent row
names its owner -- host, boot, PID namespace, pid and the process's start time, so a pid
reused after a crash or a reboot is not mistaken for the original process, and a process
of another container on the same kernel (same host name and boot, other PID namespace) is
not judged by a pid that means something else here. An owner in this host's PID namespace
is checked directly (``/proc``); any other cannot be, and counts as alive until its intent
is older than the caller's grace period. An owner of this host name but another boot is one
of those: it may be this host before a reboot, or another machine of the same name working
right now, and only the grace period tells them apart safely.

A lease (one request's hold on an upload, ``ecr.records``) asks a stricter question,
:func:`owner_gone`: not "may it still be working?" but "is it provably gone?", since taking a
lease from a live holder lets two writers seal frames under the same nonces. Only an owner of
this host, this boot and this PID namespace can be proved gone.
"""

from __future__ import annotations

import os
import socket
from functools import cache

__all__ = ["ABANDONED", "current_owner", "owner_alive", "owner_gone"]

#: The owner of an intent its process gave up on (a failed undo): recovery takes it at once.
ABANDONED = ""


@cache
def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return "-"


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (``/proc/<pid>/stat`` field 22);
    ``None`` when it does not exist or is a zombie (it will never run again)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
    except FileNotFoundError:
        return None
    except OSError:
        return "?"
    # The command name (field 2) is in parentheses and may hold spaces: split after its last ")".
    fields = stat[stat.rfind(")") + 2 :].split()
    if not fields or fields[0] in ("Z", "X"):
        return None
    return fields[19] if len(fields) > 19 else "?"


@cache
def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return "-"


def current_owner() -> str:
    """This process, as recorded in intent rows: ``host|boot id|pid namespace|pid|start time``."""
    pid = os.getpid()
    return f"{socket.gethostname()}|{_boot_id()}|{_pid_namespace()}|{pid}|{_start_time(pid) or '?'}"


def owner_alive(owner: str, *, age: float, grace: float) -> bool:
    """Whether the process ``owner`` may still be working on an intent ``age`` seconds old."""
    if owner == ABANDONED:
        return False
    parts = owner.split("|")
    if len(parts) != 5 or parts[0] != socket.gethostname():
        return age < grace  # another host (or an unknown format): only time can tell
    _host, boot, namespace, pid_text, start = parts
    if boot != _boot_id() or "-" in (boot, namespace):
        # Recorded before a reboot -- or on another machine that has this host name (two may, and
        # containers started with one --hostname do), whose live process must not be undone.
        return age < grace
    if namespace != _pid_namespace():
        return age < grace  # another container: its pids are not ours to look up
    try:
        pid = int(pid_text)
    except ValueError:
        return age < grace
    found = _start_time(pid)
    if found is None:
        if not os.path.isdir("/proc/self"):
            return _signalable(pid) or age < grace
        return False
    return start in ("?", found) or found == "?"


def owner_gone(owner: str) -> bool:
    """Whether the process ``owner`` provably no longer runs: it was this host's, of this boot and
    in this PID namespace, and its pid is now free or names a process started at another time.

    Anything else cannot be proved gone and is not: another host, another container, an owner
    recorded before a reboot of a host whose name this one shares (two machines may), a host
    whose boot id or namespace cannot be read, an unknown format. Its holder's deadline decides.
    """
    parts = owner.split("|")
    if len(parts) != 5:
        return False
    host, boot, namespace, pid_text, start = parts
    here = (socket.gethostname(), _boot_id(), _pid_namespace())
    if (host, boot, namespace) != here or "-" in here[1:]:
        return False
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    if pid <= 0:
        return False  # never a recorded process; os.kill would address a group
    found = _start_time(pid)
    if found is None:
        return os.path.isdir("/proc/self") or not _signalable(pid)
    return "?" not in (found, start) and found != start


def _signalable(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
