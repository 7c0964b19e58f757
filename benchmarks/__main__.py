"""``python -m benchmarks [--quick] [--gib N] [--only SECTION ...]``."""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable

from benchmarks import memory, peers, report, small, streaming
from benchmarks._harness import Config, MiB, Report, Skip, random_bytes

SECTIONS = ("streams", "sweep", "peers", "small", "memory", "kms", "policy", "ecr", "server", "fleet")


def _default_frame() -> tuple[int, str]:
    try:
        from ecrcrypt.format.message import DEFAULT_FRAME_LENGTH

        return int(DEFAULT_FRAME_LENGTH), "ecrcrypt.format.message.DEFAULT_FRAME_LENGTH"
    except ImportError:
        return MiB, "1 MiB (ecrcrypt.format.message not importable yet)"


def machine_facts() -> dict[str, object]:
    """What absolute figures depend on: the CPU, its AES/SHA/vector extensions, hashlib's OpenSSL, the load."""
    import ssl

    facts: dict[str, object] = {"openssl_hashlib": ssl.OPENSSL_VERSION, "load_average": os.getloadavg()}
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
    except OSError:
        return facts
    for line in info.splitlines():
        if line.startswith("model name"):
            facts["cpu"] = line.split(":", 1)[1].strip()
        elif line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            wanted = ("aes", "vaes", "vpclmulqdq", "pclmulqdq", "avx2", "avx512f", "sha_ni")
            facts["cpu_flags"] = {flag: flag in flags for flag in wanted}
            break
    return facts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, few repetitions: under a minute")
    parser.add_argument("--gib", type=float, default=None, help="size of the ECR push/pull layer in GiB")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, help="run only these sections")
    parser.add_argument("--s3", action="store_true", help="also push/pull through S3 on a moto server")
    args = parser.parse_args(argv)

    frame, frame_source = _default_frame()
    cfg = Config.make(quick=args.quick, gib=args.gib, frame_length=frame)
    rep = Report()
    rep.meta = {
        "when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "mode": "quick" if cfg.quick else "full",
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "layer_mib": cfg.layer_size // MiB,
        "big_gib": cfg.big_size / (1 << 30),
        "frame_length": frame,
        "frame_length_source": frame_source,
        "reps": cfg.reps,
    }
    try:
        import cryptography
        from cryptography.hazmat.backends.openssl import backend

        rep.meta["cryptography"] = cryptography.__version__
        rep.meta["openssl_cryptography"] = backend.openssl_version_text()
    except ImportError:
        pass
    rep.meta.update(machine_facts())

    wanted = set(args.only or SECTIONS)
    if cfg.quick:
        wanted.discard("sweep")
        if not args.only:  # the fleet's worker processes alone take half a minute: asked for by name only
            wanted.discard("fleet")
    started = time.perf_counter()
    data = random_bytes(cfg.layer_size)

    def kms_section(c: Config, r: Report) -> None:
        from benchmarks import kms

        kms.run(c, r)

    def policy_section(c: Config, r: Report) -> None:
        from benchmarks import policy

        policy.run(c, r)

    def ecr_section(c: Config, r: Report) -> None:
        from benchmarks import ecr

        ecr.run(c, r, s3=args.s3 or not c.quick)

    def server_section(c: Config, r: Report) -> None:
        from benchmarks import server

        server.run(c, r)

    def fleet_section(c: Config, r: Report) -> None:
        from benchmarks import fleet

        fleet.run(c, r)

    plan: list[tuple[str, Callable[[], None]]] = [
        ("streams", lambda: streaming.run(cfg, rep, data)),
        ("sweep", lambda: streaming.run_sweep(cfg, rep, data)),
        ("peers", lambda: peers.run(cfg, rep, data)),
        ("small", lambda: small.run(cfg, rep)),
        ("memory", lambda: memory.run(cfg, rep)),
        ("kms", lambda: kms_section(cfg, rep)),
        ("policy", lambda: policy_section(cfg, rep)),
        ("ecr", lambda: ecr_section(cfg, rep)),
        ("server", lambda: server_section(cfg, rep)),
        ("fleet", lambda: fleet_section(cfg, rep)),
    ]
    for name, fn in plan:
        if name not in wanted:
            continue
        t0 = time.perf_counter()
        print(f"-- {name}", flush=True)
        try:
            fn()
        except Skip as exc:
            rep.skip(name, str(exc))
        except Exception as exc:
            traceback.print_exc()
            rep.skip(name, f"failed: {type(exc).__name__}: {exc}")
        print(f"   {name}: {time.perf_counter() - t0:.1f} s", flush=True)
    rep.meta["seconds"] = round(time.perf_counter() - started, 1)
    rep.meta["load_average_after"] = os.getloadavg()
    report.print_table(rep)
    # Per mode too, so a quick run does not replace the last full run's figures. A run of a few
    # sections (--only) writes latest-partial.json alone: latest.json is what the docs' figures are
    # rendered from (benchmarks.claims), and a partial run would blank most of them.
    if args.only:
        path = report.write_json(rep, report.OUT / "latest-partial.json")
    else:
        path = report.write_json(rep)
        report.write_json(rep, report.OUT / f"latest-{rep.meta['mode']}.json")
    print(f"wrote {path} ({rep.meta['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
