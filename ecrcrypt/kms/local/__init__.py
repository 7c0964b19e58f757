"""The local KMS: AWS KMS semantics on one SQLite file, with a CloudTrail-shaped audit trail.

``service`` holds :class:`LocalKms` and its per-caller clients; the ``ops_*`` modules hold the
operations by family; ``store`` is the persistence, ``audit`` the trail.

Layer: kms. May import the values, ``format``, ``streams`` and ``ecrcrypt.kms`` (the protocol);
never ``ecrcrypt.kms.aws``, a store or the ECR model.
"""

from ecrcrypt.kms.local.audit import AuditEvent, AuditTrail
from ecrcrypt.kms.local.service import LocalKms, LocalKmsClient, ManualClock

__all__ = ["AuditEvent", "AuditTrail", "LocalKms", "LocalKmsClient", "ManualClock"]
