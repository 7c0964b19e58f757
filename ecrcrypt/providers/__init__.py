"""Key providers: where a message's data key comes from and how it is wrapped.

``raw_aes`` is the ESDK raw AES keyring; ``kms_keyring`` turns any :class:`ecrcrypt.kms.Kms`
into a :class:`ecrcrypt.keyprovider.KeyProvider` writing ESDK ``aws-kms`` encrypted data keys.

Layer: providers. May import the values, ``format`` and the ``Kms`` protocol (``ecrcrypt.kms``);
never a KMS implementation, a store or the ECR model.
"""

from ecrcrypt.providers.kms_keyring import KmsKeyProvider
from ecrcrypt.providers.raw_aes import RawAesKeyProvider

__all__ = ["KmsKeyProvider", "RawAesKeyProvider"]
