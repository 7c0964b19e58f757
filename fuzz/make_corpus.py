"""``python -m fuzz.make_corpus [TARGET...]``: write the seed corpus, fuzz/corpus/<target>/, from the real code.

Small valid and near-valid inputs: messages from ``ecrcrypt.encrypt`` and from the ESDK test vectors
(tests/data/esdk-vectors, every suite family, v1 and v2, signed, a negative vector; a non-framed one
from aws-encryption-sdk when installed), their headers and EDKs, local KMS ciphertext blobs,
encryption contexts, digests, ARNs, manifests and the policies P1-P7 of tests/authz/documents.py.
Seeds are named by their SHA-1 as libFuzzer names its own; the script only adds files, so the
inputs that once crashed a target (``crash-*``, kept as regression seeds) stay. Messages and blobs
are random (message ids, IVs): name the targets to refill, or every target gets fresh seeds.
"""

from __future__ import annotations

import json
import struct
import sys
from collections.abc import Iterable
from pathlib import Path

from ecrcrypt import EncryptionContext, KmsKeyProvider, LocalKms, encrypt
from ecrcrypt.authz import PolicyKind, default_key_policy_document
from ecrcrypt.digest import Digest
from ecrcrypt.ecr.types import LAYER_MEDIA_TYPE, LayerPush, build_manifest
from fuzz import TARGETS, stored_object
from fuzz._harness import _VECTOR_KEY as VECTOR_KEY
from fuzz._harness import CORPUS, FUZZ_POLICY, VECTOR_KEY_NAME, VECTOR_NAMESPACE, encode_edk_input, seed_name
from fuzz._harness import vector_provider as make_vector_provider
from fuzz.manifest import LAYERS

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "tests" / "data" / "esdk-vectors"
# One vector per suite family: v1 unsigned and signed (0014, 0078, 0378), v2 committing (0478, 0578).
_VECTOR_PREFIXES = ("0014-ec_len_2-cmm_Default", "0078-ec_len_0", "0378-ec_len_2-cmm_Default", "0478-ec_len_2", "0578")
CONTEXT = EncryptionContext({"aws:ecr:arn": "arn:aws:ecr:us-east-1:111122223333:repository/fuzz", "purpose": "fuzz"})


def _vectors() -> list[bytes]:
    out = []
    for folder, prefixes in (("net-4.0.1-raw-aes", _VECTOR_PREFIXES), ("net-4.0.0-invalid", ("0478-ec_len_2",))):
        names = sorted(p.name for p in (VECTORS / folder / "ciphertexts").iterdir())
        for prefix in prefixes:
            name = next(n for n in names if n.startswith(prefix))
            out.append((VECTORS / folder / "ciphertexts" / name).read_bytes())
    return out


def _non_framed() -> list[bytes]:
    """A non-framed v2 message written by the ESDK itself (ecrcrypt never writes one)."""
    try:
        import aws_encryption_sdk
        from aws_encryption_sdk.identifiers import CommitmentPolicy, EncryptionKeyType, WrappingAlgorithm
        from aws_encryption_sdk.internal.crypto.wrapping_keys import WrappingKey
        from aws_encryption_sdk.key_providers.raw import RawMasterKeyProvider
    except ImportError:
        return []

    class Provider(RawMasterKeyProvider):  # type: ignore[misc]
        provider_id = VECTOR_NAMESPACE

        def _get_raw_key(self, key_id: bytes) -> WrappingKey:
            return WrappingKey(
                wrapping_algorithm=WrappingAlgorithm.AES_256_GCM_IV12_TAG16_NO_PADDING,
                wrapping_key=VECTOR_KEY,
                wrapping_key_type=EncryptionKeyType.SYMMETRIC,
            )

    provider = Provider()
    provider.add_master_key(VECTOR_KEY_NAME.encode())
    client = aws_encryption_sdk.EncryptionSDKClient(commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
    out = []
    for frame_length in (0, 128):
        ciphertext, _ = client.encrypt(
            source=b"non-framed or tiny frames, from the ESDK", key_provider=provider, frame_length=frame_length
        )
        out.append(bytes(ciphertext))
    return out


def message_seeds() -> list[bytes]:
    provider = make_vector_provider()
    made = [
        encrypt(b"", provider=provider, context={}),
        encrypt(b"x" * 150, provider=provider, context=CONTEXT, frame_length=64),
        encrypt(b"y" * 128, provider=provider, context={"k": "v"}, frame_length=64),
        encrypt(bytes(range(256)), provider=provider, context=CONTEXT, frame_length=4096),
    ]
    whole = made + _vectors() + _non_framed()
    near = [made[1][:-1], made[1] + b"\x00", made[2][: len(made[2]) // 2]]
    return whole + near


def sealed_body_seeds() -> list[bytes]:
    """Descriptions for fuzz/sealed_body.py: valid bodies, then each frame rule broken once."""

    def describe(
        frame_length: int, flags: int, records: list[tuple[int, int, int]], tail: bytes | None = None
    ) -> bytes:
        out = struct.pack(">IB", frame_length, flags) + b"".join(struct.pack(">BBH", *r) for r in records)
        return out if tail is None else out + b"\xff\x00\x00\x00" + tail

    return [
        describe(64, 1, [(0, 0, 64), (0, 0, 64), (1, 0, 10)]),  # two regular frames and a short final one
        describe(64, 0, [(0, 0, 64), (1, 0, 64)]),  # a full final frame
        describe(64, 0, [(0, 0, 64), (1, 0, 0)]),  # an empty final frame after a full one
        describe(16, 0, [(1, 0, 0)]),  # the empty message
        describe(64, 0, [(0, 0, 64), (0, 0, 64)]),  # no final frame
        describe(64, 0, [(0, 129, 64), (1, 0, 1)]),  # a frame out of sequence
        describe(64, 0, [(1, 0, 65)]),  # a final frame longer than the frame length
        describe(64, 0, [(0, 0, 63), (1, 0, 1)]),  # a regular frame shorter than the frame length
        describe(64, 0, [(1, 0, 3)], b"x"),  # a byte after the final frame
        describe(1 << 21, 0, [(1, 0, 3)]),  # a frame length past the policy
    ]


def header_seeds(messages: Iterable[bytes]) -> list[bytes]:
    out = []
    for message in messages:
        try:
            length = FUZZ_POLICY.parse_header_bytes(message).length
        except Exception:  # noqa: S112 - near-valid messages need not have a whole header
            continue
        out += [message[:length], message[: length - 1]]
    return out


def edk_seeds(messages: Iterable[bytes]) -> list[bytes]:
    out = []
    for message in messages:
        try:
            header = FUZZ_POLICY.parse_header_bytes(message)
        except Exception:  # noqa: S112
            continue
        out.append(encode_edk_input(header.context, header.encrypted_data_keys))
    return out


def kms_seeds() -> tuple[list[bytes], list[bytes]]:
    """``(kms_edk seeds, kms_ciphertext seeds)`` from a local KMS of their own (another key than the runs')."""
    with LocalKms(account="111122223333") as kms:
        client = kms.client(kms.root_principal)
        arn = str(client.create_key(description="corpus").arn)
        provider = KmsKeyProvider(client, arn)
        edks = [
            encode_edk_input(context, provider.generate_data_key(context).encrypted_data_keys)
            for context in (CONTEXT, EncryptionContext())
        ]
        blob = client.encrypt(key_id=arn, plaintext=b"fuzz", encryption_context=CONTEXT).ciphertext_blob
        blobs = [
            blob,
            blob[:-1],
            b"\x02" + blob[1:],
            client.generate_data_key(key_id=arn, number_of_bytes=32).ciphertext_blob,
        ]
    return edks, blobs


def context_seeds() -> list[bytes]:
    ordered = CONTEXT.serialize()
    # The same pairs unsorted (other SDKs have written such contexts): count ‖ second pair ‖ first pair.
    pairs = EncryptionContext({"b": "2"}).serialize()[2:], EncryptionContext({"a": "1"}).serialize()[2:]
    return [ordered, b"\x00\x02" + pairs[0] + pairs[1], EncryptionContext({"a": "1"}).serialize(), b"\x00\x00"]


def text_seeds() -> dict[str, list[str]]:
    key = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    digest = str(Digest.of(b"fuzz"))
    return {
        "arns": [
            "arn:aws:ecr:us-east-1:111122223333:repository/team/app",
            key,
            "arn:aws-cn:kms:cn-north-1:111122223333:alias/ecr",
            "arn:aws:kms:us-gov-west-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab",
            "arn:aws:s3:::my-bucket/some/key",
            "alias/aws/ecr",
            "1234abcd-12ab-34cd-56ef-1234567890ab",
            "us-east-1",
        ],
        "digest": [digest, digest.upper(), digest[:-1], "sha512:" + digest[7:]],
    }


def manifest_seeds() -> list[bytes]:
    pushes = [
        LayerPush(digest=Digest.of(layer), size=len(layer), stored_size=0, already_existed=False) for layer in LAYERS
    ]
    missing = LayerPush(digest=Digest.of(b"not pushed"), size=10, stored_size=0, already_existed=False)
    raw = {"schemaVersion": 2, "layers": [{"mediaType": LAYER_MEDIA_TYPE, "digest": str(pushes[0].digest)}]}
    return [
        build_manifest(pushes),
        build_manifest(pushes[1:], config=pushes[0]),
        build_manifest([missing]),
        json.dumps(raw, indent=1).encode(),
        b'{"schemaVersion": 1}',
    ]


def policy_seeds() -> list[bytes]:
    sys.path.insert(0, str(ROOT))
    from tests.authz.documents import ALL

    documents = [
        *ALL.values(),
        json.dumps(default_key_policy_document("111122223333")),
        '{"Statement": {"Effect": "Deny", "NotAction": "kms:*", "NotResource": "*",'
        ' "Condition": {"StringEquals": {"kms:EncryptionContext:aws:ecr:arn": "x"}}}}',
    ]
    assert len(PolicyKind) == 4
    return [doc.encode() for doc in documents]


def stored_object_seeds() -> list[bytes]:
    """Blobs of this process's registry: both layouts, whole and cut, under keys the runs will not have."""
    blobs = list(stored_object.setup())
    return blobs + [blob[: len(blob) // 2] for blob in blobs] + [b"\x00"]


def write(name: str, seeds: Iterable[bytes]) -> int:
    folder = CORPUS / name
    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    for seed in seeds:
        path = folder / seed_name(seed)
        if not path.exists():
            path.write_bytes(seed)
            count += 1
    return count


def main(names: list[str]) -> None:
    """Write the seeds of the targets in ``names`` (every target when empty)."""
    chosen = set(names or TARGETS)
    messages = message_seeds()
    kms_edks, blobs = kms_seeds()
    texts = text_seeds()
    seeds = {
        "message": messages,
        "sealed_body": sealed_body_seeds(),
        "header": header_seeds(messages),
        "raw_aes_edk": edk_seeds(messages),
        "kms_edk": kms_edks + edk_seeds(messages[:1]),
        "kms_ciphertext": blobs,
        "arns": [t.encode() for t in texts["arns"]],
        "context": context_seeds(),
        "digest": [t.encode() for t in texts["digest"]],
        "manifest": manifest_seeds(),
        # Blobs of this process's registry: whole messages of both layouts, under keys the runs will not have.
        "stored_object": stored_object_seeds(),
        "policy": policy_seeds(),
        "api_shapes": [
            b'{"encryptionConfiguration": {"encryptionType": "AES256"}}',
            b'{"encryptionConfiguration": {"encryptionType": "KMS", "kmsKey": "alias/ecr"}}',
            b'{"encryptionConfiguration": {"encryptionType": "KMS_DSSE", "kmsKey": '
            b'"arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"}}',
            b'{"Constraints": {"EncryptionContextSubset": {"aws:ecr:arn": "x"}}}',
            b'{"Constraints": {"EncryptionContextEquals": {"a": "1", "B": "2"}}}',
        ],
    }
    assert sorted(seeds) == sorted(TARGETS)
    for name in sorted(chosen):
        print(f"{name}: {write(name, seeds[name])} new seeds")


if __name__ == "__main__":
    main(sys.argv[1:])
