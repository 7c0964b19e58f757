"""ecrcrypt's benchmarks: ``python -m benchmarks [--quick] [--gib N]`` (``make bench``).

Never part of ``make test``. Every figure is a median of several repetitions and is
compared only with figures of the same run (raw AES-GCM, hashlib, the peers), so
the ratios mean something on a shared, noisy machine. Results are printed as a table
and written to ``benchmarks/out/latest.json``; docs/benchmarks.md explains them.
"""
