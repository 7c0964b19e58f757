"""The fuzz oracle over the committed seed corpus, without atheris (runs wherever the tests run).

Every seed of every target (fuzz/corpus/<target>/, the regression inputs of past crashes among
them) and the seeds each fixture makes go through the same ``one_input`` the fuzzer calls: nothing
but an ecrcrypt error may escape, no oracle check may fail, and tracemalloc's peak for one input
stays within the target's bound for that input's size.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from ecrcrypt import decrypt
from fuzz import TARGETS
from fuzz._harness import CORPUS, FUZZ_POLICY, OracleViolation, Target, read_corpus, run_input, vector_provider

ROOT = Path(__file__).resolve().parents[2]


def target(name: str) -> Target:
    found = importlib.import_module(f"fuzz.{name}").TARGET
    assert isinstance(found, Target) and found.name == name
    return found


def seeds(t: Target) -> Iterator[tuple[str, bytes]]:
    yield from read_corpus(t.name)
    for i, seed in enumerate(t.setup() if t.setup is not None else ()):
        yield f"fixture-{i}", seed


def test_every_target_has_a_module_and_a_committed_corpus() -> None:
    assert sorted(p.name for p in CORPUS.iterdir() if p.is_dir()) == sorted(TARGETS)
    for name in TARGETS:
        assert len(list(read_corpus(name))) >= 3, name
        assert target(name).max_len >= max(len(data) for _, data in read_corpus(name)), name


@pytest.mark.parametrize("name", TARGETS)
def test_corpus_replay_within_the_oracle_and_memory_bound(name: str) -> None:
    t = target(name)
    tracemalloc.start()
    try:
        for seed, data in seeds(t):
            tracemalloc.reset_peak()
            before = tracemalloc.get_traced_memory()[0]
            run_input(t, data)
            peak = tracemalloc.get_traced_memory()[1] - before
            assert peak <= t.memory_bound(len(data)), f"{name}/{seed}: {peak} bytes at peak for {len(data)} bytes"
    finally:
        tracemalloc.stop()


def test_the_message_corpus_holds_messages_that_decrypt() -> None:
    # The seeds must reach the body parsers: some decrypt whole under the harness's key, some do not.
    outcomes = []
    for _, data in read_corpus("message"):
        try:
            decrypt(data, provider=vector_provider(), context=None, policy=FUZZ_POLICY)
            outcomes.append(True)
        except Exception:
            outcomes.append(False)
    assert outcomes.count(True) >= 5 and outcomes.count(False) >= 3


def test_the_oracle_lets_documented_errors_pass_and_stops_everything_else() -> None:
    t = target("digest")
    run_input(t, b"not a digest")  # ValidationError: an answer, not a finding
    with pytest.raises(OracleViolation):
        run_input(Target(name="x", one_input=_violates, max_len=1, memory_bound=lambda n: n), b"")
    with pytest.raises(TypeError):
        run_input(Target(name="x", one_input=_type_error, max_len=1, memory_bound=lambda n: n), b"")


def _violates(data: bytes) -> None:
    raise OracleViolation("two parses disagree")


def _type_error(data: bytes) -> None:
    raise TypeError("an undocumented error")


def test_the_address_space_cap_turns_an_allocation_past_the_bound_into_memory_error() -> None:
    # What the atheris runs rely on (fuzz/__main__.py): past the cap, an allocation fails loudly.
    code = (
        "from fuzz._harness import limit_memory\n"
        "limit_memory(64 << 20)\n"
        "small = bytearray(16 << 20)\n"
        "try:\n"
        "    big = bytearray(256 << 20)\n"
        "except MemoryError:\n"
        "    print('MemoryError')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "MemoryError", done.stderr
