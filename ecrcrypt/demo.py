"""``python -m ecrcrypt.demo``: the ECR encryption-at-rest story on the embedded defaults.

Runs in a temporary directory (or ``--dir``): a local KMS persisted in SQLite, a
filesystem blob store and a registry. It creates a customer managed key and alias;
AES256, KMS (AWS managed key) and KMS (customer key) repositories; pushes and pulls
a generated multi-layer image whose largest layer (256 MiB by default) is generated
and encrypted as a stream, never held in memory; lists the grants; revokes one and
shows the failure; deletes the repositories and shows the grants retired; and asks
the audit trail who pulled what.
"""

from __future__ import annotations

import hashlib
import re
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import click
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ecrcrypt import LayerPush, Repository, build_manifest
from ecrcrypt.digest import Digest
from ecrcrypt.ecr.registry import AWS_MANAGED_ECR_ALIAS, Registry
from ecrcrypt.errors import EcrKmsError, GrantsNotRetiredError

__all__ = ["demo_command", "main", "run"]

MiB = 1 << 20
_CHUNK = 4 * MiB


class _Out:
    """rich when installed (the ``cli`` extra), plain print otherwise."""

    def __init__(self, plain: bool) -> None:
        self._console: Any = None
        if not plain:
            try:
                from rich.console import Console

                self._console = Console(highlight=False)
                if not self._console.is_terminal:
                    # Piped or captured output: wide enough for ARNs and grant ids.
                    self._console.width = max(self._console.width, 140)
            except ImportError:  # pragma: no cover - rich is optional
                self._console = None

    def step(self, text: str) -> None:
        if self._console is not None:
            self._console.rule(f"[bold cyan]{text}")
        else:
            print(f"\n== {text}")

    def say(self, text: str) -> None:
        if self._console is not None:
            self._console.print(text)
        else:
            print(_strip_markup(text))

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        if self._console is not None:
            from rich.table import Table

            t = Table(title=title)
            for c in columns:
                t.add_column(c, overflow="fold")
            for r in rows:
                t.add_row(*r)
            self._console.print(t)
            return
        print(title)
        widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(columns)]
        print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
        for r in rows:
            print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))


def _esc(text: object) -> str:
    """Escape text that may contain brackets (ECR's messages do) from rich markup."""
    return str(text).replace("[", r"\[")


def _strip_markup(text: str) -> str:
    return re.sub(r"(?<!\\)\[/?[a-z ]+\]", "", text).replace("\\[", "[")


def generated(size: int, seed: int) -> Iterator[bytes]:
    """``size`` pseudo-random bytes in chunks (AES-CTR keystream): cheap, incompressible, streamed."""
    key = hashlib.sha256(f"ecrcrypt-demo-{seed}".encode()).digest()
    enc = Cipher(algorithms.AES(key), modes.CTR(b"\0" * 16)).encryptor()
    zeros = bytes(_CHUNK)
    left = size
    while left > 0:
        n = min(left, _CHUNK)
        yield enc.update(zeros[:n])
        left -= n


def generated_at(seed: int, offset: int, length: int) -> bytes:
    """Bytes ``[offset, offset+length)`` of :func:`generated` without producing the rest (CTR seeks)."""
    key = hashlib.sha256(f"ecrcrypt-demo-{seed}".encode()).digest()
    block, skip = divmod(offset, 16)
    enc = Cipher(algorithms.AES(key), modes.CTR(block.to_bytes(16, "big"))).encryptor()
    return enc.update(bytes(skip + length))[skip:]


def _push_generated(repo: Repository, size: int, seed: int) -> LayerPush:
    """Chunked upload: the digest is computed while the data is generated and declared at the end."""
    h = hashlib.sha256()
    with repo.start_upload() as up:
        for chunk in generated(size, seed):
            h.update(chunk)
            up.write(chunk)
        return up.complete(Digest(h.hexdigest()))


class _HashSink:
    def __init__(self) -> None:
        self.h = hashlib.sha256()
        self.n = 0

    def write(self, data: bytes) -> int:
        self.h.update(data)
        self.n += len(data)
        return len(data)


def _pull_image(repo: Repository, tag: str) -> list[tuple[str, int]]:
    image = repo.get_image(tag=tag)
    out = []
    for d in image.layer_digests:
        sink = _HashSink()
        repo.pull_layer(d, sink)
        if f"sha256:{sink.h.hexdigest()}" != str(d):  # pull_layer verifies too; shown for the story
            raise SystemExit(f"digest mismatch on {d}")
        out.append((str(d), sink.n))
    return out


def _fmt_size(n: int) -> str:
    return f"{n / MiB:.1f} MiB" if n >= MiB else f"{n} B"


def run(directory: Path, *, big_layer: int = 256 * MiB, plain: bool = False) -> None:
    out = _Out(plain)
    started = time.perf_counter()
    registry = Registry.create(directory)  # idempotent: reopens the demo registry of an earlier run
    developer = f"arn:aws:iam::{registry.account}:user/developer"
    ci = f"arn:aws:iam::{registry.account}:role/ci-deployer"
    admin = registry.kms()
    out.step(f"Registry {registry.registry_id} in {registry.region}, embedded defaults in {directory}")

    out.step("A customer managed key and its alias")
    key = admin.create_key(description="ecrcrypt demo key")
    admin.create_alias(alias_name="alias/demo-images", target_key_id=key.key_id)
    out.say(f"created [bold]{key.arn}[/bold] with alias [bold]alias/demo-images[/bold]")

    out.step("Three repositories, one per encryption configuration")
    configs: list[tuple[str, dict[str, str] | None]] = [
        ("demo/aes256", None),
        ("demo/kms-default", {"encryptionType": "KMS"}),
        ("demo/kms-customer", {"encryptionType": "KMS", "kmsKey": "alias/demo-images"}),
    ]
    rows: list[tuple[str, ...]] = []
    for name, cfg in configs:
        desc = registry.create_repository(name, encryption_configuration=cfg)
        api = desc.encryption_configuration.to_api()
        rows.append((name, api["encryptionType"], api.get("kmsKey", "(service managed)")))
    out.table("CreateRepository", ["repository", "encryption", "key (resolved to its ARN)"], rows)
    out.say(f"(no key given → the AWS managed key {AWS_MANAGED_ECR_ALIAS}, created on first use)")

    out.step("Grants: two per KMS repository, constrained to the repository ARN")
    rows.clear()
    for name, _cfg in configs[1:]:
        for g in registry.list_repository_grants(name):
            subset = dict(g.constraints.encryption_context_subset or {}) if g.constraints else {}
            rows.append(
                (
                    name,
                    g.grant_id[:16] + "…",
                    g.grantee_principal or g.grantee_service_principal or "",
                    ",".join(g.operations),
                    str(subset),
                )
            )
    out.table("ListGrants", ["repository", "grant", "grantee", "operations", "EncryptionContextSubset"], rows)

    out.step(f"Push: a 3-layer image with a {_fmt_size(big_layer)} layer, generated as a stream")
    t = time.perf_counter()
    custom = registry.as_caller(ci).repository("demo/kms-customer")
    layers = [
        custom.push_layer(
            b'{"architecture":"amd64","os":"linux"}', digest=Digest.of(b'{"architecture":"amd64","os":"linux"}')
        )
    ]
    layers.append(_push_generated(custom, 3 * MiB + 123, seed=1))
    layers.append(_push_generated(custom, big_layer, seed=2))
    image = custom.put_image(build_manifest(layers[1:], config=layers[0]), tag="v1")
    pushed_in = time.perf_counter() - t
    out.table(
        f"pushed demo/kms-customer:v1 ({image.digest}) in {pushed_in:.1f} s",
        ["layer", "size", "stored (encrypted)"],
        [(str(lp.digest), _fmt_size(lp.size), _fmt_size(lp.stored_size)) for lp in layers],
    )
    for name, _ in configs[:2]:
        repo = registry.as_caller(ci).repository(name)
        two = [_push_generated(repo, MiB + i, seed=10 + i) for i in range(2)]
        repo.put_image(build_manifest(two), tag="v1")
        out.say(f"pushed {name}:v1 (2 layers)")

    out.step("Pull: decrypt, stream, verify every digest")
    t = time.perf_counter()
    dev_custom = registry.as_caller(developer).repository("demo/kms-customer")
    pulled = _pull_image(dev_custom, "v1")
    out.table(
        f"pulled demo/kms-customer:v1 in {time.perf_counter() - t:.1f} s",
        ["layer", "bytes", "digest"],
        [(d, _fmt_size(n), "verified") for d, n in pulled],
    )
    for name, _ in configs[:2]:
        _pull_image(registry.as_caller(developer).repository(name), "v1")
        out.say(f"pulled {name}:v1, digests verified")
    rng = dev_custom.read_layer_range(layers[2].digest, big_layer // 2, 16)
    if rng != generated_at(2, big_layer // 2, 16):
        raise SystemExit("the range read returned the wrong bytes")
    out.say(f"byte range \\[{big_layer // 2}, +16) of the big layer, decrypting only its frame: {rng.hex()} (matches)")

    out.step("Revoke one grant: that repository stops, the others keep working")
    registry.create_repository("demo/revoked", encryption_configuration={"encryptionType": "KMS", "kmsKey": key.arn})
    victim = registry.repository("demo/revoked")
    small = victim.push_layer(b"hello", digest=Digest.of(b"hello"))
    victim.put_image(build_manifest([small]), tag="v1")
    # ECR's own (documented) grant: every object's data key takes a call under it and one under the
    # storage grant, so even a single layer can no longer be pulled or pushed.
    ecr_grant = next(
        g for g in registry.list_repository_grants("demo/revoked") if g.grantee_principal == registry.ecr_principal
    )
    admin.revoke_grant(key_id=key.arn, grant_id=ecr_grant.grant_id)
    out.say(f"RevokeGrant {ecr_grant.grant_id[:16]}… (grantee {registry.ecr_principal})")
    for what, attempt in (
        ("layer pull", lambda: victim.read_layer(small.digest)),
        ("layer push", lambda: victim.push_layer(b"hello again", digest=Digest.of(b"hello again"))),
    ):
        try:
            attempt()
        except EcrKmsError as exc:
            out.say(f"[red]{what} of demo/revoked failed:[/red] KmsException (kmsError={exc.kms_error}): {_esc(exc)}")
        else:  # pragma: no cover - the story needs the failure
            raise SystemExit(f"expected the {what} to fail after revocation")
    dev_custom.get_image(tag="v1")
    dev_custom.read_layer(layers[0].digest)
    out.say("demo/kms-customer, on the same key, still works")

    out.step("Delete the repositories: grants retired")
    for name in [c[0] for c in configs] + ["demo/revoked"]:
        try:
            registry.delete_repository(name, force=True)
            out.say(f"DeleteRepository {name}: deleted, grants retired")
        except GrantsNotRetiredError as exc:
            # The revoked grant no longer exists, so it cannot be retired: ECR reports exactly this.
            out.say(f"DeleteRepository {name}: [yellow]{_esc(exc)}[/yellow] (kmsError={exc.kms_error})")
    remaining = list(admin.list_grants(key_id=key.arn, limit=100).grants)
    default_key = admin.describe_key(key_id=AWS_MANAGED_ECR_ALIAS).arn
    remaining += list(admin.list_grants(key_id=default_key, limit=100).grants)
    out.say(f"repositories left: {len(registry.describe_repositories())}; grants left on both keys: {len(remaining)}")

    out.step("Audit: who pulled what, and when")
    trail = registry.audit
    if trail is not None:
        events = [
            e
            for name in ("BatchGetImage", "GetDownloadUrlForLayer")
            for e in trail.query(event_source="ecr.amazonaws.com", event_name=name)
        ]
        events.sort(key=lambda e: e.event_time)
        rows[:] = [
            (
                e.event_time.strftime("%H:%M:%S.%f")[:-3],
                e.principal or "?",
                e.event_name,
                str((e.request_parameters or {}).get("repositoryName")),
                str((e.request_parameters or {}).get("imageDigest") or (e.request_parameters or {}).get("layerDigest"))[
                    :19
                ]
                + "…",
            )
            for e in events
        ]
        out.table("ecr.amazonaws.com events", ["time", "who", "event", "repository", "digest"], rows)
        decrypts = trail.query(event_name="Decrypt")
        out.say(
            f"plus {len(decrypts)} KMS Decrypt calls, each with the object's encryption context "
            "(aws:ecr:arn, aws:s3:arn), made by the ECR and storage principals under the grants"
        )
    out.say(f"\n[bold green]done in {time.perf_counter() - started:.1f} s[/bold green]")
    registry.close()


@click.command("demo")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="keep the registry here instead of a temporary directory",
)
@click.option("--big-layer-mib", type=click.IntRange(min=1), default=256, show_default=True, help="largest layer")
@click.option("--plain", is_flag=True, help="plain text output even on a terminal")
@click.pass_context
def demo_command(ctx: click.Context, directory: Path | None, big_layer_mib: int, plain: bool) -> None:
    """The ECR encryption-at-rest story, end to end, on the embedded defaults (a temporary registry, or --dir)."""
    parent = ctx.parent
    # Under `ecrcrypt`, --dir is the global option (it may be written after `demo`). Only a --dir
    # written on this command line counts: $ECRCRYPT_DIR names the user's working registry, which a
    # demo must not fill with its keys and repositories.
    if (
        directory is None
        and parent is not None
        and "directory" in parent.params
        and parent.get_parameter_source("directory") is click.core.ParameterSource.COMMANDLINE
    ):
        directory = parent.params["directory"]
    if directory is not None:
        run(directory, big_layer=big_layer_mib * MiB, plain=plain)
        return
    with tempfile.TemporaryDirectory(prefix="ecrcrypt-demo-") as tmp:
        run(Path(tmp), big_layer=big_layer_mib * MiB, plain=plain)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ecrcrypt.demo`` (the same command as ``ecrcrypt demo``)."""
    demo_command.main(
        args=list(sys.argv[1:] if argv is None else argv), prog_name="python -m ecrcrypt.demo", standalone_mode=False
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
