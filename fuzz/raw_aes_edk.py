"""Target ``raw_aes_edk``: the raw AES keyring's encrypted data keys (:mod:`ecrcrypt.providers.raw_aes`).

The input is an encryption context and a list of EDKs laid out as in a message header
(:func:`fuzz._harness.decode_edk_input`): provider ids, provider infos (key name ‖ tag bits ‖ IV
length ‖ IV, parsed from the end) and wrapped keys of any shape. An unwrapped data key is one of
the three AES key lengths.
"""

from __future__ import annotations

from fuzz._harness import MiB, OracleViolation, Target, decode_edk_input, vector_provider

_PROVIDER = vector_provider()


def one_input(data: bytes) -> None:
    decoded = decode_edk_input(data)
    if decoded is None:
        return
    context, edks = decoded
    key = _PROVIDER.decrypt_data_key(edks, context)
    if len(key) not in (16, 24, 32):
        raise OracleViolation(f"the raw AES keyring unwrapped a {len(key)}-byte data key")


TARGET = Target(
    name="raw_aes_edk",
    one_input=one_input,
    max_len=2048,
    memory_bound=lambda n: 8 * n + MiB,
    runs=3000,
)
