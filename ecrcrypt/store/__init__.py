"""Blob stores: where encrypted objects live. Bytes in, bytes out; no keys, no plaintext.

``protocol`` defines :class:`BlobStore` and :class:`BlobWriter`; ``memory``, ``filesystem``
(the embedded default) and ``s3`` implement them. The stores never import each other.

Layer: store. May import the values and the layers below; never the ECR model or a face.
"""
