"""One exception hierarchy for everything ecrcrypt raises.

Every leaf carries the AWS error code it models in ``code`` so that a caller who
already handles botocore's ``ClientError`` codes can map them one to one, and
subclasses the builtin it refines (``ValueError`` for bad input, ``LookupError``
for things that are not there, ``PermissionError`` for authorization) so that
generic handlers keep working.

Messages never contain key material: they are built from identifiers (ARNs, key
ids, grant ids, names) only.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "AccessDeniedError",
    "AlreadyExistsError",
    "AuthenticationError",
    "BlobNotFoundError",
    "CommitmentPolicyError",
    "ConflictError",
    "DataKeyDecryptionError",
    "DependencyTimeoutError",
    "DigestMismatchError",
    "DeleteConflictError",
    "DisabledError",
    "EcrCryptError",
    "EcrKmsError",
    "EncryptionContextMismatchError",
    "EntityAlreadyExistsError",
    "GrantsNotRetiredError",
    "ImageNotFoundError",
    "IncorrectKeyError",
    "InvalidAliasNameError",
    "InvalidArnError",
    "InvalidCiphertextError",
    "InvalidGrantIdError",
    "InvalidGrantTokenError",
    "InvalidKeyUsageError",
    "InvalidMarkerError",
    "InvalidParameterError",
    "KeyUnavailableError",
    "KmsError",
    "KmsInternalError",
    "KmsInvalidStateError",
    "LayersNotFoundError",
    "LimitExceededError",
    "MalformedPolicyDocumentError",
    "MessageFormatError",
    "MessageLimitError",
    "NoSuchEntityError",
    "NotFoundError",
    "IamAccessDeniedError",
    "PolicyAccessDeniedError",
    "PolicySizeLimitExceededError",
    "RegistryStateError",
    "RepositoryAlreadyExistsError",
    "RepositoryNotEmptyError",
    "RepositoryNotFoundError",
    "RepositoryPolicyNotFoundError",
    "StreamClosedError",
    "UnsupportedAlgorithmError",
    "UnsupportedOperationError",
    "ValidationError",
    "error_for_code",
    # the image API and uploads (issue 12)
    "ImageAlreadyExistsError",
    "ImageDigestDoesNotMatchError",
    "ImageTagAlreadyExistsError",
    "InvalidLayerPartError",
    "ReferencedImagesNotFoundError",
    "UploadNotFoundError",
]


class EcrCryptError(Exception):
    """Root of every exception ecrcrypt raises on purpose."""

    code: ClassVar[str] = "EcrCryptError"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


# --------------------------------------------------------------------------- input


class ValidationError(EcrCryptError, ValueError):
    """A value broke a documented rule; the message names the field and the rule."""

    code = "ValidationException"


class InvalidArnError(ValidationError):
    code = "InvalidArnException"


class InvalidAliasNameError(ValidationError):
    code = "InvalidAliasNameException"


class InvalidParameterError(ValidationError):
    """ECR's name for a rejected request parameter."""

    code = "InvalidParameterException"


class MalformedPolicyDocumentError(ValidationError):
    """A policy document breaks AWS's policy grammar; the message says which rule.

    KMS answers ``MalformedPolicyDocumentException``; IAM's wire code for the same
    refusal is ``MalformedPolicyDocument``; ecrcrypt raises this one class for both.
    """

    code = "MalformedPolicyDocumentException"


class InvalidMarkerError(ValidationError):
    """KMS ``InvalidMarkerException``: "the marker that specifies where pagination should next begin is not valid"."""

    code = "InvalidMarkerException"


class NoSuchEntityError(EcrCryptError, LookupError):
    """IAM ``NoSuchEntity``: the user, role or policy a request names does not exist."""

    code = "NoSuchEntity"


class EntityAlreadyExistsError(EcrCryptError):
    """IAM ``EntityAlreadyExists``: a user, role or managed policy of that name already exists."""

    code = "EntityAlreadyExists"


class DeleteConflictError(EcrCryptError):
    """IAM ``DeleteConflict``: the entity still has policies or attachments that must go first."""

    code = "DeleteConflict"


# --------------------------------------------------------------------------- ciphertext


class InvalidCiphertextError(EcrCryptError, ValueError):
    """The ciphertext cannot be opened with what was supplied.

    KMS raises this for a wrong encryption context or a corrupted blob; the message
    layer raises its subclasses for the same situations in an ESDK message.
    """

    code = "InvalidCiphertextException"


class AuthenticationError(InvalidCiphertextError):
    """The one opaque failure for every kind of tampering.

    A flipped bit, a truncated or reordered body, a spliced frame, a wrong data key
    and a forged header all look the same from here, as ``InvalidTag`` does in
    pyca/cryptography: telling them apart would only help an attacker.
    """


class MessageFormatError(InvalidCiphertextError):
    """The bytes are not a well-formed message (before any authentication)."""


class MessageLimitError(MessageFormatError):
    """The message claims more than the configured bounds allow."""


class UnsupportedAlgorithmError(MessageFormatError):
    """Unknown version or algorithm suite."""


class CommitmentPolicyError(MessageFormatError):
    """A non-committing (version 1) message while the policy requires commitment."""


class EncryptionContextMismatchError(InvalidCiphertextError):
    """The message's encryption context is not the one the caller expected."""


class DataKeyDecryptionError(InvalidCiphertextError):
    """No encrypted data key in the message could be opened by the key provider."""


class StreamClosedError(EcrCryptError, ValueError):
    """An operation on a stream that was closed, or that failed before (errors are sticky)."""

    code = "StreamClosed"


class DigestMismatchError(EcrCryptError, ValueError):
    """The content's SHA-256 is not the digest that was declared.

    ECR answers a layer whose computed digest differs from the declared one with
    ``InvalidLayerException``.
    """

    code = "InvalidLayerException"


# --------------------------------------------------------------------------- KMS


class KmsError(EcrCryptError):
    """A failure of a KMS-shaped call (local model or AWS)."""

    code = "KMSException"


class NotFoundError(KmsError, LookupError):
    code = "NotFoundException"


class AlreadyExistsError(KmsError):
    code = "AlreadyExistsException"


class DisabledError(KmsError):
    code = "DisabledException"


class KmsInvalidStateError(KmsError):
    code = "KMSInvalidStateException"


class IncorrectKeyError(KmsError, InvalidCiphertextError):
    code = "IncorrectKeyException"


class AccessDeniedError(KmsError, PermissionError):
    code = "AccessDeniedException"


class LimitExceededError(KmsError):
    code = "LimitExceededException"


class PolicyAccessDeniedError(AccessDeniedError):
    """``AccessDeniedException`` raised by policy evaluation, carrying the decision that denied.

    ``decision`` is an :class:`ecrcrypt.authz.Decision` (typed loosely: this module
    knows nothing of the engine); its message is the decision's explanation.
    """

    def __init__(self, message: str, *, decision: object = None) -> None:
        super().__init__(message)
        self.decision = decision


class IamAccessDeniedError(PolicyAccessDeniedError):
    """A refused IAM or STS call: those services answer with ``AccessDenied`` (their query
    protocol's code), not KMS's ``AccessDeniedException``, and a client that matches on the code
    must see the one the real service sends."""

    code = "AccessDenied"


class PolicySizeLimitExceededError(LimitExceededError, ValueError):
    """A policy document is longer than AWS allows for its kind.

    KMS (PutKeyPolicy) and IAM (PutUserPolicy, PutRolePolicy, CreatePolicy) both
    answer an over-long document with a limit error, not a grammar error.
    """

    code = "LimitExceededException"


class InvalidGrantTokenError(KmsError, ValueError):
    code = "InvalidGrantTokenException"


class InvalidGrantIdError(KmsError, ValueError):
    code = "InvalidGrantIdException"


class InvalidKeyUsageError(KmsError):
    code = "InvalidKeyUsageException"


class UnsupportedOperationError(KmsError):
    code = "UnsupportedOperationException"


class KeyUnavailableError(KmsError):
    code = "KeyUnavailableException"


class ConflictError(KmsError):
    code = "ConflictException"


class DependencyTimeoutError(KmsError, TimeoutError):
    code = "DependencyTimeoutException"


class KmsInternalError(KmsError):
    code = "KMSInternalException"


# --------------------------------------------------------------------------- ECR


class RepositoryAlreadyExistsError(EcrCryptError):
    code = "RepositoryAlreadyExistsException"


class RepositoryNotFoundError(EcrCryptError, LookupError):
    code = "RepositoryNotFoundException"


class RepositoryNotEmptyError(EcrCryptError):
    code = "RepositoryNotEmptyException"


class RepositoryPolicyNotFoundError(EcrCryptError, LookupError):
    """ECR GetRepositoryPolicy / DeleteRepositoryPolicy on a repository without a policy."""

    code = "RepositoryPolicyNotFoundException"


class ImageNotFoundError(EcrCryptError, LookupError):
    code = "ImageNotFoundException"


class LayersNotFoundError(EcrCryptError, LookupError):
    code = "LayersNotFoundException"


class BlobNotFoundError(EcrCryptError, LookupError):
    """The blob store holds no object under that key (S3: ``NoSuchKey``)."""

    code = "NoSuchKey"


class EcrKmsError(EcrCryptError):
    """ECR's ``KmsException``: a KMS call made for a repository failed.

    ``kms_error`` is the error code KMS returned, as in ECR's API
    (``KmsException.kmsError``); ``__cause__`` is the KMS exception itself.
    """

    code = "KmsException"

    def __init__(self, message: str, *, kms_error: str | None = None) -> None:
        super().__init__(message)
        self.kms_error = kms_error


class RegistryStateError(EcrCryptError):
    """A file or database the registry needs is missing, empty, truncated, replaced or unreadable.

    Raised when a registry (or its metadata store) is opened, never papered over: ecrcrypt
    does not create a new key or an empty store in place of one that went missing, since
    every object encrypted under the old one would silently become undecryptable. The
    message names the file and what to do (restore it from backup, or create a new
    registry elsewhere); ``path`` is that file, when there is one.
    """

    code = "RegistryStateException"

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class GrantsNotRetiredError(EcrKmsError):
    """The repository was deleted, but retiring its grants failed.

    ECR deletes the repository anyway and reports exactly this message; the grants
    are then found with ListGrants (constraint ``aws:ecr:arn`` = the repository ARN)
    and retired by hand.
    """

    def __init__(
        self,
        *,
        repository_name: str,
        kms_key: str,
        grant_ids: tuple[str, ...] = (),
        kms_error: str | None = None,
    ) -> None:
        super().__init__(
            f"The repository [{repository_name}] has been deleted successfully but the "
            f"grants created by the kmsKey [{kms_key}] failed to be retired",
            kms_error=kms_error,
        )
        self.repository_name = repository_name
        self.kms_key = kms_key
        self.grant_ids = grant_ids


# --------------------------------------------------------------------------- ECR image API and uploads


class UploadNotFoundError(EcrCryptError, LookupError):
    code = "UploadNotFoundException"


class InvalidLayerPartError(EcrCryptError, ValueError):
    """A part that does not start where the upload stands (``last_valid_byte_received``, -1 for
    none), or a part sent while another request of the same upload is still writing."""

    code = "InvalidLayerPartException"

    def __init__(self, message: str, *, last_valid_byte_received: int = -1) -> None:
        super().__init__(message)
        self.last_valid_byte_received = last_valid_byte_received


class ImageAlreadyExistsError(EcrCryptError):
    code = "ImageAlreadyExistsException"


class ImageTagAlreadyExistsError(EcrCryptError):
    code = "ImageTagAlreadyExistsException"


class ImageDigestDoesNotMatchError(EcrCryptError, ValueError):
    code = "ImageDigestDoesNotMatchException"


class ReferencedImagesNotFoundError(EcrCryptError, LookupError):
    code = "ReferencedImagesNotFoundException"


def _leaves() -> dict[str, type[EcrCryptError]]:
    found: dict[str, type[EcrCryptError]] = {}
    stack: list[type[EcrCryptError]] = [EcrCryptError]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        # The most general class that declares a code wins, so that a code maps to
        # the leaf a caller would catch, not to a format-specific refinement.
        if "code" in cls.__dict__:
            found.setdefault(cls.code, cls)
    return found


def error_for_code(code: str, message: str) -> EcrCryptError:
    """Build the ecrcrypt exception for an AWS error code (e.g. from botocore).

    Unknown codes become a plain :class:`KmsError` whose ``code`` attribute is set
    on the instance, so that the AWS code is never lost.
    """
    cls = _leaves().get(code)
    if cls is None or cls in (EcrKmsError, GrantsNotRetiredError):
        err = KmsError(message)
        err.code = code  # type: ignore[misc]
        return err
    return cls(message)
