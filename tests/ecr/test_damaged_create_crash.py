"""A create killed at any moment leaves no registry or a whole one, and a later create finishes the job.

A child process runs ``Registry.create`` and is killed with SIGKILL after a random delay
across the create's duration. After each kill: the directory is either not a registry
(``Registry.open`` refuses with "there is no registry", nothing half-made in it) or a
whole, healthy one; ``Registry.create`` then succeeds and the registry works. Staging
folders of killed creates are never in the registry folder and are removed once stale.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from ecrcrypt.digest import Digest
from ecrcrypt.ecr.registry import Registry
from ecrcrypt.errors import RegistryStateError

_CHILD = "import sys; from ecrcrypt import Registry; print('go', flush=True); Registry.create(sys.argv[1]).close()"
LAYER = b"after the crash" * 100


def test_a_create_killed_at_random_points_leaves_no_registry_or_a_whole_one(tmp_path: Path) -> None:
    rng = random.Random(10)
    outcomes = {"none": 0, "whole": 0}
    for attempt in range(12):
        root = tmp_path / f"registry-{attempt}"
        child = subprocess.Popen([sys.executable, "-c", _CHILD, str(root)], stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "go"
        time.sleep(rng.uniform(0, 0.25))
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        child.stdout.close()
        listing = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if f"-{attempt}" in str(p))
        try:
            Registry.open(root).close()
            outcomes["whole"] += 1
        except RegistryStateError as exc:
            assert "there is no registry at" in str(exc), (attempt, str(exc), listing)
            assert not root.exists() or list(root.iterdir()) == [], (attempt, listing)
            outcomes["none"] += 1
        with Registry.create(root) as registry:
            registry.create_repository("crash/app")
            registry.repository("crash/app").push_layer(LAYER, digest=Digest.of(LAYER))
        with Registry.open(root) as registry:
            assert registry.repository("crash/app").read_layer(Digest.of(LAYER)) == LAYER
    assert sum(outcomes.values()) == 12

    os.makedirs(tmp_path / ".registry-0.create-killed")  # what a create killed before its rename leaves
    os.makedirs(tmp_path / ".registry-0.create-running")  # a create in progress
    for folder in tmp_path.glob(".registry-*.create-*"):
        if not folder.name.endswith("-running"):  # an hour later: stale
            os.utime(folder, (time.time() - 7200, time.time() - 7200))
    Registry.create(tmp_path / "registry-0").close()
    assert [p.name for p in tmp_path.glob(".registry-0.create-*")] == [".registry-0.create-running"]
