"""Coverage-guided fuzzing of every parser of untrusted bytes (atheris), see docs/fuzzing.md.

One module per target; :mod:`fuzz._harness` holds what they share (the oracle, the memory
bound, the atheris entry point). This package imports no ``ecrcrypt`` module itself, so that
``python -m fuzz`` can turn on atheris's coverage instrumentation before ecrcrypt is loaded.
"""

from __future__ import annotations

# Every target, by module name; its seed corpus is fuzz/corpus/<name>/.
TARGETS = (
    "header",
    "message",
    "sealed_body",
    "raw_aes_edk",
    "kms_edk",
    "kms_ciphertext",
    "arns",
    "context",
    "digest",
    "manifest",
    "stored_object",
    "policy",
    "api_shapes",
)
