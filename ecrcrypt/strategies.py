"""Public Hypothesis strategies for ecrcrypt's values, streams and formats, and for a live world.

The project's own property tests draw from these, so users testing code built on
ecrcrypt get the same generators the project trusts. Every strategy yields values
the value classes accept; identifiers round-trip through ``parse(str(x))``.

Value strategies only *name* things: a drawn key ARN names no key anywhere. The bound
strategies (:func:`live_key_references`, :func:`live_grants`,
``encryption_configurations(kms=...)``, :func:`repositories`) take a live KMS client or
registry and create what they draw, so a property test can use the draw directly.
Needs the ``hypothesis`` extra.

This is the only module that imports Hypothesis, and ``import ecrcrypt`` never
imports it. Hypothesis's entry point (declared in ``pyproject.toml``) calls
:func:`_hypothesis_setup_hook`, after which ``st.from_type(RepositoryArn)`` and
friends work in any test run where ecrcrypt is installed.
"""

from __future__ import annotations

_READY = False


def _hypothesis_setup_hook() -> None:
    """Registered as Hypothesis's entry point so ``st.from_type`` knows ecrcrypt's types.

    Defined before Hypothesis is imported: when a program imports this module first,
    importing Hypothesis runs its entry points, which find this module half-initialized.
    The hook then does nothing and the module registers itself once complete.
    """
    if _READY:
        _register_types()


import itertools  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from typing import Any  # noqa: E402

from hypothesis import assume  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.strategies import SearchStrategy  # noqa: E402

from ecrcrypt.arns import (  # noqa: E402
    AccountId,
    AliasArn,
    AliasName,
    KeyArn,
    KeyId,
    KeyReference,
    Partition,
    Region,
    RepositoryArn,
    RepositoryName,
    S3BucketName,
    S3ObjectArn,
)
from ecrcrypt.config import EncryptionConfiguration, EncryptionType  # noqa: E402
from ecrcrypt.context import MAX_SERIALIZED_CONTEXT, EncryptionContext  # noqa: E402
from ecrcrypt.digest import Digest  # noqa: E402
from ecrcrypt.ecr.images import MANIFEST_MEDIA_TYPES, ImageIdentifier  # noqa: E402
from ecrcrypt.ecr.registry import Registry  # noqa: E402
from ecrcrypt.ecr.repository import Repository  # noqa: E402
from ecrcrypt.ecr.types import ImageDetail, ImageId  # noqa: E402
from ecrcrypt.keyprovider import EncryptedDataKey  # noqa: E402
from ecrcrypt.kms import (  # noqa: E402
    SYMMETRIC_GRANT_OPERATIONS,
    GrantConstraints,
    GrantListEntry,
    KeyManager,
    KeyMetadata,
    KeyState,
    Kms,
)

__all__ = [
    "account_ids",
    "alias_arns",
    "alias_names",
    "bucket_names",
    "chunk_sizes",
    "chunked",
    "data_keys",
    "digests",
    "ecr_object_contexts",
    "encrypted_data_keys",
    "encryption_configurations",
    "encryption_contexts",
    "grant_constraints",
    "image_details",
    "image_identifiers",
    "image_ids",
    "image_tags",
    "key_arns",
    "key_metadata",
    "key_ids",
    "key_references",
    "live_grants",
    "live_key_references",
    "partitions",
    "plaintext_lengths",
    "plaintexts",
    "policy_documents",
    "live_keys_with_policies",
    "regions",
    "repositories",
    "repository_arns",
    "repository_names",
    "s3_object_arns",
]

_LOWER = "abcdefghijklmnopqrstuvwxyz"
_DIGITS = "0123456789"
_ALNUM = _LOWER + _DIGITS
_HEX = "0123456789abcdef"

# A sample of real Region codes, so generated values look like the ones users meet;
# the generated codes below cover the rest of the pattern.
_KNOWN_REGIONS = (
    "us-east-1",
    "us-east-2",
    "us-west-2",
    "eu-west-1",
    "eu-central-1",
    "ap-southeast-2",
    "ap-northeast-1",
    "sa-east-1",
    "ca-central-1",
    "il-central-1",
    "cn-north-1",
    "cn-northwest-1",
    "us-gov-west-1",
    "us-gov-east-1",
)

# ESDK specification (client-apis/encrypt.md): encryption-context keys starting with
# "aws-crypto-" are reserved for the SDK itself (e.g. "aws-crypto-public-key").
_RESERVED_CONTEXT_PREFIX = "aws-crypto-"


# -- identifiers ---------------------------------------------------------------------
def partitions() -> SearchStrategy[Partition]:
    """The AWS partitions ecrcrypt knows."""
    return st.sampled_from(["aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b", "aws-iso-e", "aws-iso-f"]).map(
        Partition
    )


@st.composite
def _region_codes(draw: st.DrawFn) -> str:
    area = draw(st.text(_LOWER, min_size=2, max_size=2))
    words = draw(st.lists(st.text(_LOWER, min_size=1, max_size=10), min_size=1, max_size=3))
    number = draw(st.integers(0, 99))
    return "-".join([area, *words, str(number)])


def regions() -> SearchStrategy[Region]:
    """Region codes: mostly real ones, plus any code of the ``xx-word(-word)*-N`` form."""
    return st.one_of(st.sampled_from(_KNOWN_REGIONS), _region_codes()).map(Region)


def account_ids() -> SearchStrategy[AccountId]:
    """Twelve-digit account ids (leading zeros included: they are significant)."""
    return st.text(_DIGITS, min_size=12, max_size=12).map(AccountId)


_NAME_SEPARATORS = (".", "_", "__", "-", "--", "---")


@st.composite
def _name_component(draw: st.DrawFn) -> str:
    # ECR: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)* -- alphanumeric runs joined by one separator.
    runs = draw(st.lists(st.text(_ALNUM, min_size=1, max_size=12), min_size=1, max_size=4))
    parts = [runs[0]]
    for run in runs[1:]:
        parts += (draw(st.sampled_from(_NAME_SEPARATORS)), run)
    return "".join(parts)


@st.composite
def _repository_name_text(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 9)) == 0:
        # The length bounds themselves: ECR allows 2 to 256 characters.
        return draw(st.sampled_from([2, 255, 256]).map(lambda n: "a" * n))
    name = "/".join(draw(st.lists(_name_component(), min_size=1, max_size=4)))
    if len(name) < 2:
        name += draw(st.text(_ALNUM, min_size=1, max_size=1))
    return name


def repository_names() -> SearchStrategy[RepositoryName]:
    """ECR repository names: namespaces (``team/app``), every separator, lengths 2-256."""
    return _repository_name_text().map(RepositoryName)


@st.composite
def _repository_arn(draw: st.DrawFn) -> RepositoryArn:
    return RepositoryArn(region=draw(regions()), account=draw(account_ids()), name=draw(repository_names()))


def repository_arns() -> SearchStrategy[RepositoryArn]:
    """``arn:<partition>:ecr:<region>:<account>:repository/<name>``, partition from the Region."""
    return _repository_arn()


def key_ids() -> SearchStrategy[KeyId]:
    """KMS key ids: lowercase UUIDs and multi-Region ``mrk-`` ids."""
    uuid_ids = st.uuids().map(str)
    mrk_ids = st.text(_HEX, min_size=32, max_size=32).map(lambda h: "mrk-" + h)
    return st.one_of(uuid_ids, mrk_ids).map(KeyId)


@st.composite
def _key_arn(draw: st.DrawFn) -> KeyArn:
    return KeyArn(region=draw(regions()), account=draw(account_ids()), key_id=draw(key_ids()))


def key_arns() -> SearchStrategy[KeyArn]:
    """KMS key ARNs."""
    return _key_arn()


_ALIAS_ALPHABET = _ALNUM + "ABCDEFGHIJKLMNOPQRSTUVWXYZ" + ":/_-"


def alias_names(*, allow_aws_managed: bool = True) -> SearchStrategy[AliasName]:
    """``alias/<name>`` of KMS's alphabet, 7-256 characters.

    ``allow_aws_managed=False`` excludes ``alias/aws/...``, which KMS reserves for AWS
    managed keys (CreateAlias refuses it), for tests that create aliases.
    """
    # KMS CreateAlias: AliasName ^[a-zA-Z0-9:/_-]+$, 1-256 characters, "alias/" prefix.
    suffixes = st.one_of(
        st.text(_ALIAS_ALPHABET, min_size=1, max_size=40),
        st.sampled_from(["aws/ecr", "aws/s3", "ecr", "my-key"]),
        st.integers(1, 250).map(lambda n: "k" * n),
    )
    names = suffixes.map(lambda s: "alias/" + s)
    if not allow_aws_managed:
        names = names.filter(lambda n: not n.startswith("alias/aws/"))
    return names.map(AliasName)


@st.composite
def _alias_arn(draw: st.DrawFn, allow_aws_managed: bool) -> AliasArn:
    return AliasArn(
        region=draw(regions()),
        account=draw(account_ids()),
        alias=draw(alias_names(allow_aws_managed=allow_aws_managed)),
    )


def alias_arns(*, allow_aws_managed: bool = True) -> SearchStrategy[AliasArn]:
    """KMS alias ARNs."""
    return _alias_arn(allow_aws_managed)


def key_references() -> SearchStrategy[KeyReference]:
    """Any of the four forms KMS accepts as ``KeyId``: key id, key ARN, alias name, alias ARN."""
    return st.one_of(key_ids(), key_arns(), alias_names(), alias_arns())


@st.composite
def _bucket_text(draw: st.DrawFn) -> str:
    # S3 general purpose bucket naming rules: 3-63 characters of [a-z0-9.-], starting and
    # ending with a letter or digit, no "..", not an IP address, no xn-- prefix, no
    # -s3alias suffix. Dot-separated DNS labels satisfy all of it by construction.
    labels = draw(
        st.lists(
            st.builds(
                lambda head, middle, tail: head + middle + tail if middle or tail else head,
                st.text(_ALNUM, min_size=1, max_size=1),
                st.text(_ALNUM + "-", max_size=12),
                st.text(_ALNUM, min_size=1, max_size=1),
            ),
            min_size=1,
            max_size=4,
        )
    )
    name = ".".join(labels)[:63].rstrip(".-")
    while len(name) < 3:
        name += draw(st.text(_ALNUM, min_size=1, max_size=1))
    return name


def _valid_bucket(name: str) -> bool:
    try:
        S3BucketName(name)
    except ValueError:
        return False
    return ".." not in name and not name.startswith("sthree-") and not name.endswith(("--ol-s3", "--x-s3"))


def bucket_names() -> SearchStrategy[S3BucketName]:
    """S3 general purpose bucket names (DNS-compatible, 3-63 characters)."""
    return _bucket_text().filter(_valid_bucket).map(S3BucketName)


def _object_keys() -> SearchStrategy[str]:
    # S3: an object key is 1 to 1024 bytes of UTF-8. 256 characters are at most 1024 bytes.
    return st.one_of(
        st.text(st.characters(codec="utf-8"), min_size=1, max_size=256),
        st.builds(lambda p, d: f"{p}/{d}", st.text(_ALNUM + "/-_", min_size=1, max_size=30), digests().map(str)),
    )


@st.composite
def _s3_object_arn(draw: st.DrawFn) -> S3ObjectArn:
    partition = draw(st.sampled_from(["aws", "aws-cn", "aws-us-gov"]))
    return S3ObjectArn(bucket=draw(bucket_names()), key=draw(_object_keys()), partition=Partition(partition))


def s3_object_arns() -> SearchStrategy[S3ObjectArn]:
    """``arn:<partition>:s3:::<bucket>/<key>`` with arbitrary Unicode keys."""
    return _s3_object_arn()


def digests() -> SearchStrategy[Digest]:
    """``sha256:<64 hex>`` digests (not necessarily of any particular content)."""
    return st.binary(min_size=32, max_size=32).map(lambda b: Digest(b.hex()))


# -- encryption contexts -------------------------------------------------------------
def _context_text(min_size: int) -> SearchStrategy[str]:
    chars = st.characters(codec="utf-8")  # every code point but the surrogates, non-BMP included
    return st.one_of(
        st.text(chars, min_size=min_size, max_size=24),
        # Repetition reaches long strings (towards the 65535-byte bound) cheaply.
        st.builds(lambda s, n: s * n, st.text(chars, min_size=max(min_size, 1), max_size=4), st.integers(1, 4000)),
    )


_RESERVED_PER_PAIR = 4 + 64


def _truncate(text: str, budget: int) -> str:
    return text.encode("utf-8")[: max(budget, 0)].decode("utf-8", "ignore")


@st.composite
def _contexts(draw: st.DrawFn, min_pairs: int, max_pairs: int, allow_reserved: bool) -> EncryptionContext:
    keys = _context_text(1)
    if not allow_reserved:
        keys = keys.filter(lambda k: not k.startswith(_RESERVED_CONTEXT_PREFIX))
    drawn = draw(st.dictionaries(keys, _context_text(0), min_size=min_pairs, max_size=max_pairs))
    # The ESDK header carries the serialized context behind a UInt16 length: pairs are
    # kept while they fit, the one that overflows is cut to the remaining budget, so
    # contexts reach right up to the bound without exceeding it.
    pairs: dict[str, str] = {}
    used = 2  # the pair count
    for index, (key, value) in enumerate(drawn.items()):
        still_required = max(min_pairs - index - 1, 0)
        budget = MAX_SERIALIZED_CONTEXT - used - 4 - still_required * _RESERVED_PER_PAIR  # 4: two UInt16 lengths
        key_bytes, value_bytes = len(key.encode()), len(value.encode())
        if key_bytes + value_bytes > budget:
            key = _truncate(key, min(key_bytes, budget // 2))
            value = _truncate(value, budget - len(key.encode()))
            if not key or key in pairs or (not allow_reserved and key.startswith(_RESERVED_CONTEXT_PREFIX)):
                continue
        pairs[key] = value
        used += 4 + len(key.encode()) + len(value.encode())
    assume(len(pairs) >= min_pairs)  # a truncated key collided: rare, draw again
    return EncryptionContext(pairs)


def encryption_contexts(
    *, min_pairs: int = 0, max_pairs: int = 8, allow_reserved: bool = False
) -> SearchStrategy[EncryptionContext]:
    """Arbitrary Unicode contexts (non-BMP included) that serialize within 65535 bytes.

    Keys starting with ``aws-crypto-`` are reserved by the ESDK and excluded unless
    ``allow_reserved``.
    """
    return _contexts(min_pairs, max_pairs, allow_reserved)


@st.composite
def _ecr_object_context(draw: st.DrawFn) -> EncryptionContext:
    prefix = draw(st.lists(st.text(_ALNUM + "-_.", min_size=1, max_size=20), max_size=3).map("/".join))
    return EncryptionContext.for_ecr_object(
        bucket=draw(bucket_names()),
        prefix=prefix,
        digest=draw(digests()),
        repository=draw(repository_arns()),
    )


def ecr_object_contexts() -> SearchStrategy[EncryptionContext]:
    """ECR's two-key context (``aws:s3:arn``, ``aws:ecr:arn``) for a layer or manifest."""
    return _ecr_object_context()


# -- configurations and keys ---------------------------------------------------------
def encryption_configurations(*, kms: Kms | None = None) -> SearchStrategy[EncryptionConfiguration]:
    """AES256 (no key), and KMS / KMS_DSSE with no key (AWS managed) or a key reference.

    Without ``kms`` the key references are only well-formed: they name keys and aliases
    that exist nowhere, which suits parsing tests but makes CreateRepository fail. With
    ``kms`` (a live client, e.g. ``registry.kms()``) every KMS configuration names a key
    created in it while drawing -- by key id, key ARN, alias name or alias ARN -- so a
    repository made from the draw is created (see :func:`live_key_references`).
    """
    aes = st.just(EncryptionConfiguration())
    references: SearchStrategy[Any] = key_references() if kms is None else live_key_references(kms)
    kms_configs = st.builds(
        lambda t, k: EncryptionConfiguration(encryption_type=t, kms_key=k),
        st.sampled_from([EncryptionType.KMS, EncryptionType.KMS_DSSE]),
        st.none() | references,
    )
    return st.one_of(aes, kms_configs)


# -- strategies bound to a live world: drawing creates what it names ------------------------
_SERIAL = itertools.count(1)


def _unique(prefix: str) -> str:
    """A suffix no earlier draw of this process used: the KMS and registry outlive one example."""
    return f"{prefix}{next(_SERIAL)}"


@st.composite
def _live_key_reference(draw: st.DrawFn, kms: Kms) -> KeyReference:
    meta = kms.create_key(description=draw(st.text(_ALNUM + " ", max_size=20)))
    form = draw(st.sampled_from(["key id", "key ARN", "alias name", "alias ARN"]))
    if form == "key id":
        return KeyId(meta.key_id)
    if form == "key ARN":
        return KeyArn.parse(meta.arn)
    # Alias names drawn from KMS's alphabet, made unique, never under the reserved alias/aws/.
    name = draw(alias_names(allow_aws_managed=False)).value[: 256 - 12] + _unique("-")
    kms.create_alias(alias_name=name, target_key_id=meta.key_id)
    alias = AliasName(name)
    if form == "alias name":
        return alias
    arn = KeyArn.parse(meta.arn)
    return AliasArn(region=arn.region, account=arn.account, alias=alias)


def live_key_references(kms: Kms) -> SearchStrategy[KeyReference]:
    """References to keys that exist: each draw creates a key in ``kms`` (and an alias for the
    alias forms) and names it in one of the four forms KMS accepts."""
    return _live_key_reference(kms)


@st.composite
def _repository(draw: st.DrawFn, registry: Registry, configs: SearchStrategy[EncryptionConfiguration]) -> Repository:
    name = draw(repository_names()).value[: 256 - 12] + _unique("-")
    registry.create_repository(name, encryption_configuration=draw(configs))
    return registry.repository(name)


def repositories(
    *, registry: Registry, configurations: SearchStrategy[EncryptionConfiguration] | None = None
) -> SearchStrategy[Repository]:
    """Repositories created in ``registry`` while drawing, with a drawn name (made unique) and a
    configuration from ``configurations`` (default: :func:`encryption_configurations` bound
    to the registry's KMS, so KMS repositories use keys that exist)."""
    configs = configurations if configurations is not None else encryption_configurations(kms=registry.kms())
    return _repository(registry, configs)


@st.composite
def _grant_constraints(draw: st.DrawFn) -> GrantConstraints:
    # KMS GrantConstraints: up to 8 pairs, values up to 384 characters, keys unique ignoring case.
    keys = st.text(_ALNUM + ":-_", min_size=1, max_size=30)
    values = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=384)
    pairs = draw(st.dictionaries(keys, values, min_size=1, max_size=8))
    folded: dict[str, str] = {}
    for k in pairs:
        folded.setdefault(k.lower(), k)
    pairs = {k: pairs[k] for k in folded.values()}
    if draw(st.booleans()):
        return GrantConstraints(encryption_context_subset=pairs)
    return GrantConstraints(encryption_context_equals=pairs)


def grant_constraints() -> SearchStrategy[GrantConstraints]:
    """KMS grant constraints: exactly one of EncryptionContextSubset / EncryptionContextEquals."""
    return _grant_constraints()


@st.composite
def _live_grant(draw: st.DrawFn, kms: Kms, key_id: str | None) -> GrantListEntry:
    key = key_id if key_id is not None else kms.create_key(description="grant target").arn
    account = KeyArn.parse(kms.describe_key(key_id=key).arn).account
    grantee = draw(
        st.sampled_from(["ecr.us-east-1.amazonaws.com", "s3.us-east-1.amazonaws.com"])
        | st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True).map(lambda n: f"arn:aws:iam::{account}:role/{n}")
    )
    operations = draw(st.sets(st.sampled_from(sorted(SYMMETRIC_GRANT_OPERATIONS)), min_size=1))
    constraints = draw(st.none() | grant_constraints())
    made = kms.create_grant(
        key_id=key,
        grantee_principal=grantee,
        operations=sorted(operations),
        retiring_principal=draw(st.none() | st.just(grantee)),
        constraints=constraints,
    )
    (entry,) = kms.list_grants(key_id=key, grant_id=made.grant_id).grants
    return entry


def live_grants(kms: Kms, *, key_id: str | None = None) -> SearchStrategy[GrantListEntry]:
    """Grants created in ``kms`` while drawing, on ``key_id`` or on a new key: a drawn grantee (a
    service principal or a role of the key's account), symmetric-key operations, and optionally
    retiring principal and constraints. The draw is the grant as ListGrants shows it."""
    return _live_grant(kms, key_id)


_EPOCH = datetime(2015, 1, 1, tzinfo=UTC)


@st.composite
def _key_metadata(draw: st.DrawFn) -> KeyMetadata:
    arn = draw(key_arns())
    state = draw(st.sampled_from([KeyState.ENABLED, KeyState.DISABLED, KeyState.PENDING_DELETION]))
    created = _EPOCH + timedelta(seconds=draw(st.integers(0, 20 * 365 * 86400)))
    deletion = created + timedelta(days=draw(st.integers(7, 30))) if state is KeyState.PENDING_DELETION else None
    return KeyMetadata(
        aws_account_id=str(arn.account),
        key_id=str(arn.key_id),
        arn=str(arn),
        creation_date=created,
        enabled=state is KeyState.ENABLED,
        description=draw(st.text(max_size=50)),
        key_state=state,
        key_manager=draw(st.sampled_from(KeyManager)),
        deletion_date=deletion,
        multi_region=str(arn.key_id).startswith("mrk-"),
    )


def key_metadata() -> SearchStrategy[KeyMetadata]:
    """Consistent ``KeyMetadata``: the ARN names the account and key id, ``Enabled`` iff the
    state is Enabled, a deletion date (7-30 days after creation) iff PendingDeletion."""
    return _key_metadata()


# -- policies -------------------------------------------------------------------------
_KMS_ACTIONS = (
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncrypt*",
    "kms:GenerateDataKey*",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:DescribeKey",
    "kms:CreateGrant",
    "kms:ListGrants",
    "kms:RetireGrant",
    "kms:Get*",
    "kms:List*",
)
_KMS_USE_ACTIONS = (*_KMS_ACTIONS[:5], "kms:CreateGrant", "kms:RetireGrant")
_ECR_ACTIONS = (
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
    "ecr:BatchCheckLayerAvailability",
    "ecr:PutImage",
    "ecr:InitiateLayerUpload",
    "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload",
    "ecr:DescribeImages",
    "ecr:ListImages",
    "ecr:BatchDeleteImage",
    "ecr:*",
)
_POLICY_KINDS = ("key", "identity", "repository")


def _one_or_list(values: SearchStrategy[str]) -> SearchStrategy[Any]:
    return values | st.lists(values, min_size=1, max_size=3, unique=True)


@st.composite
def _statement(draw: st.DrawFn, kind: str, account: str) -> dict[str, Any]:
    actions = _ECR_ACTIONS if kind == "repository" else _KMS_ACTIONS + (_ECR_ACTIONS if kind == "identity" else ())
    effect = draw(st.sampled_from(["Allow", "Deny"]))
    if kind == "key" and effect == "Deny":
        # A key policy may deny the key's use, never reading its metadata and policy: the key stays
        # one its account can inspect and repair (KMS's lockout safety check cares for PutKeyPolicy).
        actions = _KMS_USE_ACTIONS
    statement: dict[str, Any] = {"Effect": effect}
    if kind != "identity":
        statement["Principal"] = draw(st.sampled_from([{"AWS": f"arn:aws:iam::{account}:root"}, {"AWS": account}, "*"]))
    statement["Action"] = draw(_one_or_list(st.sampled_from(actions)))
    if kind != "repository":
        statement["Resource"] = "*"
    if draw(st.booleans()):
        context_key = "aws:PrincipalAccount" if kind == "repository" else "kms:CallerAccount"
        statement["Condition"] = {"StringEquals": {context_key: account}}
    return statement


@st.composite
def _policy_document(draw: st.DrawFn, kind: str, account: str | None) -> str:
    acct = account if account is not None else str(draw(account_ids()))
    statements = draw(st.lists(_statement(kind, acct), min_size=1, max_size=4))
    if kind == "key":
        # First the statement KMS's lockout safety check asks for: the account keeps managing the key.
        root = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{acct}:root"}, "Action": "kms:*"}
        statements = [{"Sid": "EnableIAMUserPermissions", **root, "Resource": "*"}, *statements]
    for i, statement in enumerate(statements[1 if kind == "key" else 0 :]):
        statement.setdefault("Sid", f"Drawn{i}")
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, indent=draw(st.sampled_from([None, 2])))


def policy_documents(kind: str = "key", *, account: str | None = None) -> SearchStrategy[str]:
    """Policy documents (JSON text) ecrcrypt's policy grammar accepts, of ``kind``:

    * ``"key"``: a key policy that starts by giving the account root ``kms:*`` (so it passes KMS's
      lockout safety check) and denies at most the key's use, never reading its metadata or policy;
    * ``"identity"``: an IAM policy (no Principal);
    * ``"repository"``: an ECR repository policy (no Resource).

    Principals are the account (``account``, or a drawn one) or ``*``; conditions test the caller's
    account. The documents only *name* principals: pair them with a live world to enforce them."""
    if kind not in _POLICY_KINDS:
        raise ValueError(f"kind must be one of {_POLICY_KINDS}, not {kind!r}")
    return _policy_document(kind, account)


@st.composite
def _live_key_with_policy(draw: st.DrawFn, kms: Kms, account: str | None) -> KeyMetadata:
    if account is None:
        keys = kms.list_keys(limit=1).keys
        arn = keys[0].key_arn if keys else kms.create_key(description="names the account").arn
        account = str(KeyArn.parse(arn).account)
    text = draw(policy_documents("key", account=account))
    return kms.create_key(description=draw(st.text(_ALNUM + " ", max_size=20)), policy=text)


def live_keys_with_policies(kms: Kms, *, account: str | None = None) -> SearchStrategy[KeyMetadata]:
    """Keys created in ``kms`` with a drawn key policy (:func:`policy_documents`); ``account`` is
    the KMS's account (read from a key ARN when not given). ``kms.get_key_policy`` returns
    the document as drawn."""
    return _live_key_with_policy(kms, account)


# -- images ---------------------------------------------------------------------------
_TAG_FIRST = _ALNUM + _LOWER.upper() + "_"
_TAG_REST = _TAG_FIRST + ".-"


def image_tags() -> SearchStrategy[str]:
    """Image tags ECR accepts: 1-128 of ``[a-zA-Z0-9_.-]``, not starting with ``.`` or ``-``."""
    return st.builds(
        lambda first, rest: first + rest,
        st.sampled_from(_TAG_FIRST),
        st.text(st.sampled_from(_TAG_REST), max_size=127),
    )


def image_ids() -> SearchStrategy[ImageId]:
    """``ImageId``: a manifest digest, tagged or not."""
    return st.builds(ImageId, digest=digests(), tag=st.none() | image_tags())


def image_identifiers() -> SearchStrategy[ImageIdentifier]:
    """ECR's ``ImageIdentifier`` as a request names an image: by digest, by tag, or both."""
    return st.one_of(
        st.builds(ImageIdentifier, digest=digests().map(str)),
        st.builds(ImageIdentifier, tag=image_tags()),
        st.builds(ImageIdentifier, digest=digests().map(str), tag=image_tags()),
    )


@st.composite
def _image_detail(draw: st.DrawFn) -> ImageDetail:
    media_type = draw(st.sampled_from(MANIFEST_MEDIA_TYPES))
    return ImageDetail(
        registry_id=str(draw(account_ids())),
        repository_name=str(draw(repository_names())),
        digest=draw(digests()),
        tags=tuple(draw(st.lists(image_tags(), max_size=3, unique=True))),
        size_in_bytes=draw(st.none() | st.integers(0, 10 * (1 << 40))),
        pushed_at=float(draw(st.integers(int(_EPOCH.timestamp()), int(_EPOCH.timestamp()) + 20 * 365 * 86400))),
        media_type=media_type,
        artifact_media_type=draw(st.none() | st.sampled_from(_ARTIFACT_TYPES)),
        subject_digest=draw(st.none() | digests()),
    )


_ARTIFACT_TYPES = (
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
    "application/vnd.dev.cosign.artifact.sig.v1+json",
)


def image_details() -> SearchStrategy[ImageDetail]:
    """DescribeImages' ``ImageDetail``: valid members, tags unique, an unknown size sometimes."""
    return _image_detail()


def data_keys(length: int = 32) -> SearchStrategy[bytes]:
    """Data-key (or wrapping-key) bytes; AES-256 by default."""
    return st.binary(min_size=length, max_size=length)


def encrypted_data_keys() -> SearchStrategy[EncryptedDataKey]:
    """ESDK encrypted data keys: ``aws-kms`` ones carrying a key ARN, and raw-keyring-like ones."""
    kms = st.builds(
        lambda arn, ct: EncryptedDataKey(provider_id="aws-kms", provider_info=str(arn).encode(), ciphertext=ct),
        key_arns(),
        st.binary(min_size=1, max_size=200),
    )
    raw = st.builds(
        lambda ns, info, ct: EncryptedDataKey(provider_id=ns, provider_info=info, ciphertext=ct),
        # "aws-kms" is the KMS keyring's id: its provider info must be a key ARN, drawn above.
        st.text(st.characters(codec="utf-8"), min_size=1, max_size=20).filter(lambda ns: ns != "aws-kms"),
        st.binary(max_size=64),
        st.binary(max_size=64),
    )
    return st.one_of(kms, raw)


# -- plaintexts and chunkings ----------------------------------------------------------
def plaintext_lengths(*, frame_length: int = 4096, max_frames: int = 4) -> SearchStrategy[int]:
    """Lengths biased to frame boundaries: 0, 1, F-1, F, F+1 and kF-1, kF, kF+1 up to ``max_frames``."""
    if frame_length < 1 or max_frames < 1:
        raise ValueError("frame_length and max_frames must be positive")
    f = frame_length
    edges = {0, 1, f - 1, f, f + 1}
    for k in range(2, max_frames + 1):
        edges |= {k * f - 1, k * f, k * f + 1}
    return st.one_of(st.sampled_from(sorted(e for e in edges if e >= 0)), st.integers(0, max_frames * f + 1))


def _fill(length: int, seed: int) -> bytes:
    # Content from a seed rather than drawn byte by byte: multi-frame plaintexts stay
    # cheap for Hypothesis, and seed 0 (all zeros) is what a failure shrinks to.
    if seed == 0:
        return bytes(length)
    return random.Random(seed).randbytes(length)


def plaintexts(*, frame_length: int = 4096, max_frames: int = 4) -> SearchStrategy[bytes]:
    """Plaintexts whose lengths sit on and around frame boundaries (see :func:`plaintext_lengths`)."""
    return st.builds(
        _fill, plaintext_lengths(frame_length=frame_length, max_frames=max_frames), st.integers(0, 2**64 - 1)
    )


def chunk_sizes(*, frame_length: int | None = None, max_size: int = 1 << 20) -> SearchStrategy[int]:
    """Positive write/read sizes, biased to 1, 512 and (given a frame length) F-1, F, F+1."""
    edges = {1, 512}
    if frame_length is not None:
        edges |= {frame_length - 1, frame_length, frame_length + 1}
    edges = {e for e in edges if 1 <= e <= max_size}
    return st.one_of(st.sampled_from(sorted(edges)), st.integers(1, max_size))


@st.composite
def _chunked(draw: st.DrawFn, data: bytes, frame_length: int | None, allow_empty: bool, max_chunks: int) -> list[bytes]:
    sizes = draw(
        st.lists(
            st.one_of(st.just(0), chunk_sizes(frame_length=frame_length, max_size=max(1, len(data))))
            if allow_empty
            else chunk_sizes(frame_length=frame_length, max_size=max(1, len(data))),
            max_size=max_chunks,
        )
    )
    view = memoryview(data)
    chunks: list[bytes] = []
    pos = 0
    for size in sizes:
        if pos >= len(data) and not (allow_empty and size == 0):
            break
        chunks.append(bytes(view[pos : pos + size]))
        pos += size
    if pos < len(data):
        chunks.append(bytes(view[pos:]))
    return chunks


def chunked(
    data: bytes, *, frame_length: int | None = None, allow_empty: bool = True, max_chunks: int = 64
) -> SearchStrategy[list[bytes]]:
    """Splits of ``data`` into chunks whose concatenation is ``data`` (empty chunks optional)."""
    return _chunked(bytes(data), frame_length, allow_empty, max_chunks)


# -- registration --------------------------------------------------------------------
def _register_types() -> None:
    registrations: list[tuple[type, SearchStrategy[object]]] = [
        (Partition, partitions()),
        (Region, regions()),
        (AccountId, account_ids()),
        (RepositoryName, repository_names()),
        (RepositoryArn, repository_arns()),
        (KeyId, key_ids()),
        (KeyArn, key_arns()),
        (AliasName, alias_names()),
        (AliasArn, alias_arns()),
        (S3BucketName, bucket_names()),
        (S3ObjectArn, s3_object_arns()),
        (Digest, digests()),
        (EncryptionContext, encryption_contexts()),
        (EncryptionConfiguration, encryption_configurations()),
        (EncryptedDataKey, encrypted_data_keys()),
        (GrantConstraints, grant_constraints()),
        (KeyMetadata, key_metadata()),
        (ImageId, image_ids()),
        (ImageIdentifier, image_identifiers()),
        (ImageDetail, image_details()),
    ]
    for cls, strategy in registrations:
        st.register_type_strategy(cls, strategy)


_READY = True
_register_types()
