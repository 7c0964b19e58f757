"""SIGKILL at random instrumented points of create, push (both ways), migrate and delete; then recover.

Each iteration copies a template registry, forks a child that installs a crash hook
(``ecr.crashpoints``) killing itself with SIGKILL at the n-th point it reaches -- n drawn
uniformly over all the points the full scenario passes, so kills land between each KMS
call and the database write that records it, between each blob commit and its record,
inside recovery itself, and so on -- and the parent then reopens the directory and checks
every invariant (``crash_scenario.check_after_crash``). ``ECRCRYPT_CRASH_ITERATIONS`` sets
the kills per test (``make soak`` runs many more).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ecrcrypt.ecr.crashpoints import set_crash_hook
from tests.ecr.crash_scenario import Acks, check_after_crash, copy_template, make_template, open_registry, run_scenario

ITERATIONS = int(os.environ.get("ECRCRYPT_CRASH_ITERATIONS", "80"))
_REPO_ROOT = Path(__file__).resolve().parents[2]


def _count_points(root: Path) -> list[str]:
    """Run the scenario once to the end in this process on ``root`` (a copy), recording every crash point passed."""
    seen: list[str] = []
    set_crash_hook(seen.append)
    try:
        run_scenario(root, lambda _line: None)
    finally:
        set_crash_hook(None)
    return seen


def _killed_child(root: Path, at: int, work: Callable[[Path, Callable[[str], None]], None]) -> tuple[int, str]:
    """Fork a child that runs ``work`` and SIGKILLs itself at crash point number ``at``."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            os.close(read_end)
            hits = 0

            def hook(_name: str) -> None:
                nonlocal hits
                hits += 1
                if hits == at:
                    os.kill(os.getpid(), signal.SIGKILL)

            set_crash_hook(hook)

            def ack(line: str) -> None:
                os.write(write_end, (line + "\n").encode())

            work(root, ack)
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "r") as acks:
        text = acks.read()
    _, status = os.waitpid(pid, 0)
    return status, text


def _open_and_close(root: Path, _ack: Callable[[str], None]) -> None:
    """What a process that only opens the registry does: recovery (``Registry.open`` runs it)."""
    open_registry(root).close()


@pytest.fixture(scope="module", params=["KMS", "KMS_DSSE"])
def template(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    base = tmp_path_factory.mktemp(f"crash-{request.param}")
    make_template(base / "template", encryption=request.param)
    return base / "template", _count_points(copy_template(base / "template", base / "dry-run"))


def test_scenario_passes_every_window(template: tuple[Path, list[str]]) -> None:
    """The points the kills are drawn from cover each window the issue names."""
    _, points = template
    for window in (
        "create:intent",  # intent durable, no grant yet
        "create:grant",  # after a CreateGrant, before the repository row
        "create:recorded",
        "push:intent",
        "push:encrypted",  # blob written, not committed
        "push:committed",  # blob committed, not recorded
        "push:recorded",
        "upload:write",
        "upload:committed",
        "delete:intent",  # row gone, blobs and grants not yet
        "delete:blob",
        "grant:retired",  # between the two RetireGrant calls
        "delete:done",
    ):
        assert window in points, window


def test_sigkill_at_random_points_then_recover(template: tuple[Path, list[str]], tmp_path: Path) -> None:
    root_template, points = template
    kills, recovery_kills = sigkill_runs(
        lambda i: copy_template(root_template, tmp_path / f"run-{i}"),
        points,
        ITERATIONS,
        lambda rng: rng.randint(1, len(points)),
    )
    assert kills >= ITERATIONS * 0.9  # the recovery at open adds points: a few runs may finish
    print(f"{kills} kills, {recovery_kills} of them followed by a killed recovery")
    assert recovery_kills > 0 or ITERATIONS < 30  # some recoveries had work to be killed in


def sigkill_runs(
    copy: Callable[[int], Path], points: list[str], iterations: int, draw: Callable[[random.Random], int]
) -> tuple[int, int]:
    """``iterations`` runs of the scenario on a fresh copy each, killed at the crash point ``draw``
    picks (every other recovery killed too), each checked; the kills and the killed recoveries."""
    rng = random.Random(int.from_bytes(os.urandom(4), "big"))
    kills = recovery_kills = 0
    for i in range(iterations):
        at = draw(rng)
        root = copy(i)
        status, text = _killed_child(root, at, run_scenario)
        if os.WIFSIGNALED(status):
            assert os.WTERMSIG(status) == signal.SIGKILL
            kills += 1
        else:
            assert os.WEXITSTATUS(status) == 0, text
        # Every other run, the recovery that follows is killed too, at one of its first points.
        second = rng.randint(1, 4) if i % 2 else 0
        if second:
            status, _ = _killed_child(root, second, _open_and_close)
            assert os.WIFSIGNALED(status) or os.WEXITSTATUS(status) == 0
            recovery_kills += os.WIFSIGNALED(status)
        try:
            check_after_crash(root, Acks.parse(text))
        except BaseException as exc:
            exc.add_note(f"killed at crash point {at} ({points[at - 1]}), then in recovery at {second}; acks:\n{text}")
            raise
    return kills, recovery_kills


def test_sigkill_after_random_delay_in_a_fresh_interpreter(template: tuple[Path, list[str]], tmp_path: Path) -> None:
    """No hook: a parent kills a separate interpreter after a random delay, wherever it is."""
    root_template, _ = template
    rng = random.Random(int.from_bytes(os.urandom(4), "big"))
    for i in range(3):
        root = copy_template(root_template, tmp_path / f"run-{i}")
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.ecr.crash_scenario", str(root)],
            cwd=_REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert child.stdout is not None
        first = child.stdout.readline()  # the registry is open: kill during the work, not the imports
        time.sleep(rng.uniform(0.0, 0.4))
        child.send_signal(signal.SIGKILL)
        rest = child.stdout.read()
        child.wait()
        child.stdout.close()
        check_after_crash(root, Acks.parse((first + rest).replace("done\n", "")))
