"""The embedded registry directory: its layout, its manifest, and how it is created and verified.

A registry directory holds state that cannot be re-derived: the local KMS's database
and root key, the AES256 service key, the registry database and the blobs. Losing one
of them must never turn into a fresh, empty one -- a new service key makes every
AES256 object undecryptable, an empty database forgets every repository and leaves
its grants behind. So:

* a directory is made **only** by :func:`create_directory` (``Registry.create``,
  ``ecrcrypt init``), which builds it in a private sibling folder and renames it into
  place: a crash leaves either no registry or a whole one, and concurrent creators
  agree on one;
* ``manifest.json`` (0600) records the format version, the registry's identity and,
  per file, what must be there: the stores' random ids and the keys' fingerprints
  (HMACs under the keys, ``ecrcrypt._keyfile``: they identify a key, reveal nothing).
  The registry database records the same facts;
* :func:`open_directory` refuses a missing, empty, truncated, damaged or replaced file
  with ``RegistryStateError`` naming it and saying what to do. Three witnesses
  (manifest, registry database, the file itself) tell which one is wrong: a file that
  disagrees with the two records is the damaged one, a record that disagrees with the
  other record and the files is.

Every file is 0600 and every folder 0700 whatever the umask (``ecrcrypt._statefile``).

The registry's metadata may live outside the directory (a PostgreSQL database shared by a fleet,
or a SQLite file elsewhere), named by a URL at creation and at every open
(``ecr.metadata_url``). The manifest then records ``metadata`` (the database's store id and the
service key's fingerprint) instead of ``registry.sqlite3`` and ``service-key``: the service key
is kept *in* that metadata, wrapped under a key of the local KMS made for it at creation (or,
with an outside KMS, under the KMS key the caller wrapped it with, ``ServiceKey.create_wrapped``),
so no host writes key material to its disk. A metadata URL that names another registry's
database, or none where the manifest says there is one, is refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import time
from pathlib import Path
from typing import Any

import attrs

from ecrcrypt._keyfile import key_fingerprint, read_key_file
from ecrcrypt._statefile import database_problem, fsync_dir, private_dir, write_new_private_file
from ecrcrypt.arns import AccountId, Region
from ecrcrypt.ecr.metadata import RegistryMetadata
from ecrcrypt.ecr.metadata_store import MetadataStore
from ecrcrypt.ecr.metadata_url import create_metadata, open_metadata, sqlite_path
from ecrcrypt.ecr.service_key import FINGERPRINT as SERVICE_KEY_FINGERPRINT
from ecrcrypt.ecr.service_key import WRAPPED as WRAPPED_SERVICE_KEY
from ecrcrypt.ecr.service_key import ServiceKey
from ecrcrypt.errors import EcrKmsError, KmsInternalError, RegistryStateError, ValidationError
from ecrcrypt.kms.local.service import LocalKms

__all__ = [
    "BLOBS",
    "FORMAT_VERSION",
    "KMS_DB",
    "MANIFEST",
    "REGISTRY_DB",
    "ROOT_KEY",
    "SERVICE_KEY",
    "Manifest",
    "OpenedDirectory",
    "create_directory",
    "open_directory",
    "read_manifest",
]

MANIFEST = "manifest.json"
REGISTRY_DB = "registry.sqlite3"
SERVICE_KEY = "service-key"
KMS_DB = "kms.sqlite3"
ROOT_KEY = "kms.sqlite3.rootkey"
BLOBS = "blobs"
FORMAT = "ecrcrypt-registry"
FORMAT_VERSION = 1
# Keys of the registry database's records about the local KMS.
KMS_STORE_ID, ROOT_KEY_FINGERPRINT = "kms.store_id", "kms.root_key_fingerprint"
_RESTORE = "restore it from backup"
_NEW = "to start a new registry instead, create one in an empty directory (Registry.create, `ecrcrypt init`)"


@attrs.frozen(kw_only=True)
class Manifest:
    """What a registry directory must hold: identity, store ids, key fingerprints (no secret)."""

    account: str
    region: str
    registry_store_id: str
    service_key_fingerprint: str
    kms_store_id: str | None  # None: the registry uses an outside KMS (no kms.sqlite3 here)
    root_key_fingerprint: str | None
    #: the metadata (and the wrapped service key in it) is an outside database named by URL at each open
    external_metadata: bool = False
    #: the outside KMS the registry was created for (``"aws"``), when its creator named one: manifests of
    #: registries made with a KMS factory and no name (and every manifest before this field) hold none
    outside_kms: str | None = None

    def __attrs_post_init__(self) -> None:
        if self.outside_kms is not None and self.kms_store_id is not None:
            raise ValidationError("a registry with its own local KMS names no outside KMS")

    def body(self) -> dict[str, Any]:
        files: dict[str, Any] = {BLOBS: {"folder": True}}
        ids = {"store_id": self.registry_store_id}
        fingerprint = {"fingerprint": self.service_key_fingerprint}
        if not self.external_metadata:
            files.update({REGISTRY_DB: ids, SERVICE_KEY: fingerprint})
        if self.kms_store_id is not None:
            files[KMS_DB] = {"store_id": self.kms_store_id}
            files[ROOT_KEY] = {"fingerprint": self.root_key_fingerprint}
        body = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "account": self.account,
            "region": self.region,
            "files": files,
        }
        if self.external_metadata:  # (absent from the manifests of registries that keep it in the directory)
            body["metadata"] = {**ids, "service_key_fingerprint": self.service_key_fingerprint}
        if self.outside_kms is not None:  # (absent likewise: older readers ignore it, the checksum covers it)
            body["kms"] = self.outside_kms
        return body

    def to_bytes(self) -> bytes:
        body = self.body()
        body["checksum"] = _checksum(body)
        return (json.dumps(body, indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def parse(cls, data: bytes, path: Path) -> Manifest:
        """The manifest in ``data``; ``RegistryStateError`` naming ``path`` for anything else."""

        def bad(what: str) -> RegistryStateError:
            return RegistryStateError(f"the registry manifest {path} {what}: {_RESTORE}", path=str(path))

        if not data:
            raise bad("is empty (0 bytes)")
        try:
            body = json.loads(data.decode())
        except (UnicodeDecodeError, ValueError):
            raise bad("is damaged or truncated (not JSON)") from None
        if not isinstance(body, dict) or body.get("format") != FORMAT:
            raise bad("is not an ecrcrypt registry manifest")
        checksum = body.pop("checksum", None)
        if checksum != _checksum(body):
            raise bad("is damaged (its checksum does not match its content)")
        if body.get("format_version") != FORMAT_VERSION:
            raise RegistryStateError(
                f"the registry manifest {path} has format version {body.get('format_version')!r}; this ecrcrypt "
                f"reads {FORMAT_VERSION}: open the registry with the ecrcrypt that wrote it",
                path=str(path),
            )
        try:
            files = body["files"]
            kms = files.get(KMS_DB)
            outside = body.get("metadata")
            outside_kms = body.get("kms")
            if outside_kms is not None and (kms is not None or not isinstance(outside_kms, str)):
                raise bad("is damaged (its kms field contradicts its files)")
            return cls(
                account=str(body["account"]),
                region=str(body["region"]),
                registry_store_id=str((outside or files[REGISTRY_DB])["store_id"]),
                service_key_fingerprint=str(
                    outside["service_key_fingerprint"] if outside else files[SERVICE_KEY]["fingerprint"]
                ),
                kms_store_id=None if kms is None else str(kms["store_id"]),
                root_key_fingerprint=None if kms is None else str(files[ROOT_KEY]["fingerprint"]),
                external_metadata=outside is not None,
                outside_kms=outside_kms,
            )
        except (KeyError, TypeError):
            raise bad("is damaged (a field is missing)") from None


def _checksum(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@attrs.define(kw_only=True)
class OpenedDirectory:
    """The parts of a verified registry directory, open (the caller closes them)."""

    manifest: Manifest
    metadata: MetadataStore
    #: None: kept wrapped in outside metadata under an outside KMS (the registry unwraps it)
    service_key: ServiceKey | None
    local_kms: LocalKms | None

    def close(self) -> None:
        self.metadata.close()
        if self.local_kms is not None:
            self.local_kms.close()


# -- creation -----------------------------------------------------------------------------
def create_directory(
    root: Path,
    *,
    account: AccountId | str,
    region: Region | str,
    local_kms: bool,
    metadata: str | MetadataStore | None = None,
    outside_kms: str | None = None,
) -> bool:
    """Make a registry directory at ``root`` unless one is there; whether this call made it.

    ``root`` must be missing or an empty folder: anything else that lacks a manifest is
    refused (a lost manifest, or a folder that is not a registry). The registry is built
    in a private sibling folder and renamed onto ``root`` in one step. ``metadata`` (a URL or
    a store) keeps the registry's metadata outside the directory (made there if missing).
    ``outside_kms`` names the outside KMS of a registry made without a local one (``"aws"``): the
    manifest records it, so that whoever opens the registry can refuse the wrong KMS.
    """
    if outside_kms is not None and local_kms:
        raise ValidationError("outside_kms names the KMS of a registry made without a local KMS (local_kms=False)")
    outside = outside_metadata(root, metadata)
    acct = str(account if isinstance(account, AccountId) else AccountId(account))
    reg = str(region if isinstance(region, Region) else Region(region))
    _remove_stale_staging(root)
    if (root / MANIFEST).exists():
        return False
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise RegistryStateError(
            f"{root} is not empty and holds no registry manifest ({MANIFEST}): if it is a registry whose manifest "
            f"was lost, {_RESTORE}; if an earlier create was interrupted there, remove the folder and create again; "
            "ecrcrypt creates a registry only in an empty or missing folder",
            path=str(root / MANIFEST),
        )
    private_dir(root.parent)
    staging = root.parent / f".{root.name}.create-{secrets.token_hex(6)}"
    private_dir(staging)
    try:
        manifest = attrs.evolve(
            _populate(staging, account=acct, region=reg, local_kms=local_kms, metadata=outside),
            outside_kms=outside_kms,
        )
        write_new_private_file(staging / MANIFEST, manifest.to_bytes())
        fsync_dir(staging)
        try:
            os.rename(staging, root)  # onto a missing or empty folder: atomic
        except OSError:
            if (root / MANIFEST).exists():
                return False  # a concurrent creator won: its registry is the one
            raise
        fsync_dir(root.parent)
        return True
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _remove_stale_staging(root: Path, *, older_than: float = 3600.0) -> None:
    """Remove staging folders of creates of ``root`` killed mid-way (never renamed into place, so
    nothing was ever encrypted under their keys); a recent one may be a create in progress."""
    now = time.time()
    for leftover in root.parent.glob(f".{root.name}.create-*"):
        with contextlib.suppress(OSError):
            if now - leftover.stat().st_mtime > older_than:
                shutil.rmtree(leftover)


def _populate(
    staging: Path, *, account: str, region: str, local_kms: bool, metadata: str | MetadataStore | None
) -> Manifest:
    kms = LocalKms(staging / KMS_DB, account=account, region=region) if local_kms else None
    try:
        kms_store_id = None if kms is None else kms.store_id
        root_fingerprint = None if kms is None else kms.root_key_fingerprint
        if metadata is None:
            fingerprint = ServiceKey.create(staging / SERVICE_KEY).fingerprint
            store: MetadataStore = RegistryMetadata.create(staging / REGISTRY_DB, account=account, region=region)
        else:
            store = create_metadata(metadata, account=account, region=region) if isinstance(metadata, str) else metadata
            store.check_identity(account=account, region=region, record=True)
        try:
            if metadata is not None:
                fingerprint = _wrapped_service_key(store, kms, account=account, region=region)
            records = {SERVICE_KEY_FINGERPRINT: fingerprint}
            if kms_store_id is not None and root_fingerprint is not None:
                records.update({KMS_STORE_ID: kms_store_id, ROOT_KEY_FINGERPRINT: root_fingerprint})
            store.record_once_many({k: v for k, v in records.items() if store.recorded(k) is None})
            recorded = {k: store.recorded(k) for k in records}  # an outside database may hold some already
            if recorded != records:
                raise RegistryStateError(
                    f"the registry metadata at {store.location} belongs to another registry directory (its "
                    f"{', '.join(sorted(k for k in records if recorded[k] != records[k]))} differ): give this "
                    "registry a metadata database of its own"
                )
            store_id = store.store_id
        finally:
            if not isinstance(metadata, MetadataStore):
                store.close()
    finally:
        if kms is not None:
            kms.close()
    private_dir(staging / BLOBS)
    assert store_id is not None
    return Manifest(
        account=account,
        region=region,
        registry_store_id=store_id,
        service_key_fingerprint=fingerprint,
        kms_store_id=kms_store_id,
        root_key_fingerprint=root_fingerprint,
        external_metadata=metadata is not None,
    )


def _wrapped_service_key(store: MetadataStore, kms: LocalKms | None, *, account: str, region: str) -> str:
    """The fingerprint of the service key kept wrapped in outside metadata, made under a new key of
    the local KMS (``kms``) if it holds none; with an outside KMS the caller must have made it."""
    if kms is None:
        fingerprint = store.recorded(SERVICE_KEY_FINGERPRINT)
        if store.recorded(WRAPPED_SERVICE_KEY) is None or fingerprint is None:
            raise ValidationError(
                f"the registry metadata at {store.location} holds no KMS-wrapped service key: with an outside KMS, "
                "make it first with ServiceKey.create_wrapped(metadata, kms, key_id=...) (docs/deploy.md)"
            )
        return fingerprint
    admin = kms.client(_root_principal(account, region))
    if store.recorded(WRAPPED_SERVICE_KEY) is None:
        key = admin.create_key(description="ecrcrypt: wraps the registry's AES256 service key").arn
        return ServiceKey.create_wrapped(store, admin, key_id=key).fingerprint
    try:
        return ServiceKey.load_wrapped(store, admin).fingerprint
    except EcrKmsError as exc:
        raise RegistryStateError(
            f"the registry metadata at {store.location} belongs to another registry directory (its service key is "
            f"wrapped under a KMS key this directory's KMS does not hold: {exc.kms_error}): give this registry a "
            "metadata database of its own"
        ) from exc


def _root_principal(account: str, region: str) -> str:
    return f"arn:{Region(region).partition}:iam::{account}:root"


def outside_metadata(root: Path, metadata: str | MetadataStore | None) -> str | MetadataStore | None:
    """``metadata`` unless it names the directory's own database (then ``None``, the default)."""
    if isinstance(metadata, str) and metadata.startswith("sqlite://"):
        path = sqlite_path(metadata)
        if path is not None and path.resolve() == (root / REGISTRY_DB).resolve():
            return None
    return metadata


# -- opening ------------------------------------------------------------------------------
def open_directory(
    root: Path, *, open_local_kms: bool = True, metadata: str | MetadataStore | None = None
) -> OpenedDirectory:
    """Open and verify the registry directory ``root``; nothing is created, nothing repaired.

    ``open_local_kms=False`` checks the local KMS's files without opening the service
    (the caller brings its own KMS factory). ``metadata``: the URL (or store) of the outside
    metadata of a registry created with one; it is opened, never created.
    """
    manifest = _read_manifest(root)
    outside = outside_metadata(root, metadata)
    if manifest.external_metadata != (outside is not None):
        where = root / MANIFEST
        raise RegistryStateError(
            f"the registry in {root} keeps its metadata in an outside database ({where} says so): open it with that "
            "database's URL (metadata=, --metadata-url, ECRCRYPT_METADATA_URL)"
            if manifest.external_metadata
            else f"the registry in {root} keeps its metadata in {root / REGISTRY_DB}, not at the metadata URL given",
            path=str(where),
        )
    for name in _files_of(manifest):
        _check_present(root / name, name)
    store: MetadataStore
    if outside is None:
        store = RegistryMetadata.open(root / REGISTRY_DB)
    else:
        store = open_metadata(outside) if isinstance(outside, str) else outside
    service_key: ServiceKey | None = None
    kms: LocalKms | None = None
    try:
        if outside is None:
            service_key = _check_own_files(root, manifest, store)
        else:
            _check_outside(root, manifest, store)
        if manifest.kms_store_id is not None:
            kms = _verified_kms(root, manifest, _root_key_fingerprint(root / ROOT_KEY))
            if outside is not None:  # kept wrapped in the metadata, under a key of this KMS
                service_key = ServiceKey.load_wrapped(
                    store, kms.client(_root_principal(manifest.account, manifest.region))
                )
            if not open_local_kms:
                kms.close()
                kms = None
        return OpenedDirectory(manifest=manifest, metadata=store, service_key=service_key, local_kms=kms)
    except BaseException:
        store.close()
        if kms is not None:
            kms.close()
        raise


def _check_own_files(root: Path, manifest: Manifest, metadata: MetadataStore) -> ServiceKey:
    """The service key file, once it, the manifest and the directory's database agree."""
    records = {k: metadata.recorded(k) for k in _facts(manifest)}
    service_key = ServiceKey.load(root / SERVICE_KEY)
    actual: dict[str, str | None] = {SERVICE_KEY: service_key.fingerprint}
    if manifest.kms_store_id is not None:
        actual[ROOT_KEY] = _root_key_fingerprint(root / ROOT_KEY)
    _check_records_agree(root, manifest, records, actual)
    _check_file(root, SERVICE_KEY, manifest.service_key_fingerprint, actual[SERVICE_KEY], "fingerprint")
    return service_key


def _check_outside(root: Path, manifest: Manifest, store: MetadataStore) -> None:
    differing = sorted(k for k, v in _facts(manifest).items() if store.recorded(k) != v)
    if differing:
        raise RegistryStateError(
            f"the registry metadata at {store.location} is not this registry's (it differs from {root / MANIFEST} "
            f"in: {', '.join(differing)}): give this registry's metadata URL, or restore it from backup",
            path=str(root / MANIFEST),
        )


def _verified_kms(root: Path, manifest: Manifest, root_key_fingerprint: str | None) -> LocalKms:
    """The local KMS, open, once its root key and its store are the ones ``manifest`` records."""
    _check_file(root, ROOT_KEY, manifest.root_key_fingerprint, root_key_fingerprint, "fingerprint")
    kms = _open_kms(root, manifest)
    try:
        _check_file(root, KMS_DB, manifest.kms_store_id, kms.store_id, "store id")
    except BaseException:
        kms.close()
        raise
    return kms


def _facts(manifest: Manifest) -> dict[str, str | None]:
    """What the manifest and the registry database both record, by the database's keys."""
    return {
        "store_id": manifest.registry_store_id,
        "account": manifest.account,
        "region": manifest.region,
        SERVICE_KEY_FINGERPRINT: manifest.service_key_fingerprint,
        KMS_STORE_ID: manifest.kms_store_id,
        ROOT_KEY_FINGERPRINT: manifest.root_key_fingerprint,
    }


def read_manifest(root: Path) -> Manifest:
    """The manifest of the registry directory ``root``, parsed; nothing else is checked or opened."""
    return _read_manifest(root)


def _read_manifest(root: Path) -> Manifest:
    path = root / MANIFEST
    if not root.is_dir():
        raise RegistryStateError(f"there is no registry at {root}: {_NEW}", path=str(root))
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        if not any(root.iterdir()):
            raise RegistryStateError(
                f"there is no registry at {root} (an empty folder): {_NEW}", path=str(root)
            ) from None
        raise RegistryStateError(
            f"the registry manifest {path} is missing: {_RESTORE} (it records which keys and stores the registry "
            "was created with; ecrcrypt does not guess them)",
            path=str(path),
        ) from None
    except OSError as exc:
        raise RegistryStateError(
            f"the registry manifest {path} cannot be read ({exc}): {_RESTORE}", path=str(path)
        ) from None
    return Manifest.parse(data, path)


def _files_of(manifest: Manifest) -> tuple[str, ...]:
    kms = (KMS_DB, ROOT_KEY) if manifest.kms_store_id is not None else ()
    own = () if manifest.external_metadata else (REGISTRY_DB, SERVICE_KEY)
    return (*own, *kms, BLOBS)


def _check_present(path: Path, name: str) -> None:
    if name == BLOBS:
        if not path.is_dir():
            raise RegistryStateError(
                f"the blob folder {path} is missing: {_RESTORE} (the registry's objects live there)", path=str(path)
            )
        return
    if name in (REGISTRY_DB, KMS_DB):
        problem = database_problem(path)
        if problem is not None:
            what = "registry database" if name == REGISTRY_DB else "KMS store"
            raise RegistryStateError(f"the {what} {path} {problem}: {_RESTORE}", path=str(path))
    elif not path.is_file():
        what = "service key file" if name == SERVICE_KEY else "root key file"
        raise RegistryStateError(
            f"the {what} {path} is missing: {_RESTORE}. ecrcrypt does not make a new key: everything encrypted "
            "under the old one would become undecryptable",
            path=str(path),
        )


def _root_key_fingerprint(path: Path) -> str:
    try:
        data = read_key_file(path)
    except OSError as exc:
        raise RegistryStateError(
            f"the root key file {path} cannot be read ({exc}): {_RESTORE}", path=str(path)
        ) from None
    if len(data) != 32:
        raise RegistryStateError(
            f"the root key file {path} is damaged or truncated ({len(data)} bytes; the key is 32): {_RESTORE}",
            path=str(path),
        )
    return key_fingerprint(data, "root-key")


def _check_records_agree(
    root: Path, manifest: Manifest, records: dict[str, str | None], actual: dict[str, str | None]
) -> None:
    """The manifest and the registry database must describe the same registry; when they do
    not, the one the key files agree with less is the replaced (or damaged) one."""
    ours = _facts(manifest)
    differing = sorted(k for k in ours if ours[k] != records[k])
    if not differing:
        return
    witnesses = {SERVICE_KEY_FINGERPRINT: actual.get(SERVICE_KEY), ROOT_KEY_FINGERPRINT: actual.get(ROOT_KEY)}
    manifest_hits = sum(1 for k, v in witnesses.items() if v is not None and ours[k] == v)
    database_hits = sum(1 for k, v in witnesses.items() if v is not None and records[k] == v)
    if database_hits > manifest_hits:
        path = root / MANIFEST
        raise RegistryStateError(
            f"the registry manifest {path} does not describe this registry (it differs from {REGISTRY_DB} and "
            f"the key files in: {', '.join(differing)}): it was replaced or damaged; {_RESTORE}",
            path=str(path),
        )
    path = root / REGISTRY_DB
    raise RegistryStateError(
        f"the registry database {path} is not this registry's (it differs from {MANIFEST} in: "
        f"{', '.join(differing)}): it was replaced by another registry's database; {_RESTORE}",
        path=str(path),
    )


def _check_file(root: Path, name: str, expected: str | None, found: str | None, what: str) -> None:
    if expected != found:
        path = root / name
        raise RegistryStateError(
            f"{path} is not the file this registry was created with (its {what} differs from the one "
            f"{MANIFEST} and {REGISTRY_DB} record): it was replaced or damaged; {_RESTORE}",
            path=str(path),
        )


def _open_kms(root: Path, manifest: Manifest) -> LocalKms:
    try:
        return LocalKms(root / KMS_DB, account=manifest.account, region=manifest.region, create=False)
    except KmsInternalError as exc:
        # The root key was verified against both records above: what fails now is the store.
        path = root / KMS_DB
        raise RegistryStateError(
            f"the KMS store {path} does not open with this registry's root key, which matches both records, "
            f"so the store is the file that was replaced or damaged; restore it from backup. ({exc})",
            path=str(path),
        ) from exc


def check_caller_identity(manifest: Manifest, *, account: object, region: object) -> None:
    """A caller that names an account or Region must name the registry's own."""
    for label, given, recorded in (("account", account, manifest.account), ("region", region, manifest.region)):
        if given is not None and str(given) != recorded:
            raise ValidationError(f"this registry directory is for {label} {recorded}, not {given}")
