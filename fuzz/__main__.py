"""``python -m fuzz TARGET [libFuzzer options]``: run one target under atheris.

ecrcrypt and the target are imported with atheris's coverage instrumentation; the address space is
then capped at what the process maps plus the target's memory bound for its largest input (its
``-max_len``) and a fixed allowance for libFuzzer's own corpus; the fuzzer starts from the committed
seeds (fuzz/corpus/TARGET) and the fixture's own seeds. New inputs go to the first folder given by
``--out`` (a temporary folder by default, never the committed corpus); a crash is written as
``<out>/crash-<sha1>`` and makes the exit status non-zero.

Options of our own (before the libFuzzer ones): ``--out DIR`` and ``--seconds N`` (``-max_total_time``).
Every other argument goes to libFuzzer, e.g. ``-runs=2000``. ``python -m fuzz TARGET --replay FILE...``
runs the oracle on saved inputs (a crash file, a corpus folder) without atheris and prints each
finding's traceback; its exit status is the number of findings.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

from fuzz import TARGETS

_WORK = "ECRCRYPT_FUZZ_WORK"  # the run's working folder, set by the parent process for the child
# Room for libFuzzer's in-memory corpus and atheris's coverage tables, beyond the target's own bound.
_FUZZER_ALLOWANCE = 256 << 20


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[1] not in TARGETS:
        print(f"usage: python -m fuzz TARGET [--out DIR] [--seconds N] [libFuzzer options]; TARGET in {TARGETS}")
        return 2
    name, rest = argv[1], argv[2:]
    if rest[:1] == ["--replay"]:
        return replay(name, [Path(p) for p in rest[1:]])
    if _WORK not in os.environ:
        # libFuzzer ends the process with exit(), past Python's atexit handlers: the run happens in a
        # child, and this parent removes the child's working folder (fixture seeds, the KMS database).
        folder = tempfile.mkdtemp(prefix=f"ecrcrypt-fuzz-{name}-")
        try:
            return subprocess.call([sys.executable, "-m", "fuzz", *argv[1:]], env={**os.environ, _WORK: folder})  # noqa: S603
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    import atheris  # only here: replaying needs no fuzzer

    out: Path | None = None
    extra: list[str] = []
    while rest:
        arg = rest.pop(0)
        if arg == "--out":
            out = Path(rest.pop(0))
        elif arg == "--seconds":
            extra.append(f"-max_total_time={int(rest.pop(0))}")
        else:
            extra.append(arg)
    with atheris.instrument_imports(include=["ecrcrypt", "fuzz"]):
        harness = importlib.import_module("fuzz._harness")
        target = importlib.import_module(f"fuzz.{name}").TARGET
    work = Path(os.environ[_WORK])
    out = out or work / "new"
    out.mkdir(parents=True, exist_ok=True)
    live = work / "fixture-seeds"
    live.mkdir()
    for seed in target.setup() if target.setup is not None else ():
        (live / harness.seed_name(seed)).write_bytes(seed)
    options = [f"-max_len={target.max_len}", f"-artifact_prefix={out}/", "-timeout=20", *target.options, *extra]
    if not any(o.startswith("-rss_limit_mb=") for o in options):
        options.append("-rss_limit_mb=0")  # RLIMIT_AS below is the memory oracle
    harness.limit_memory(target.memory_bound(target.max_len) + _FUZZER_ALLOWANCE)
    atheris.Setup(
        [argv[0], *options, str(out), str(live), str(harness.CORPUS / name)],
        lambda data: harness.run_input(target, data),
    )
    atheris.Fuzz()
    return 0


def replay(name: str, paths: list[Path]) -> int:
    """Run the oracle on saved inputs; returns the number of inputs that broke it."""
    harness = importlib.import_module("fuzz._harness")
    target = importlib.import_module(f"fuzz.{name}").TARGET
    files = [f for p in paths for f in (sorted(p.iterdir()) if p.is_dir() else [p])]
    found = 0
    for file in files:
        try:
            harness.run_input(target, file.read_bytes())
        except Exception:
            found += 1
            print(f"{file}: finding", file=sys.stderr)
            traceback.print_exc()
    print(f"{name}: {len(files)} inputs replayed, {found} findings")
    return found


if __name__ == "__main__":
    sys.exit(main(sys.argv))
