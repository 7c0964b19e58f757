"""The AWS Encryption SDK message format: suites, header codec, key derivation, frames.

Pure: bytes in, values out, no I/O. Everything that knows the byte layout of a message lives
here, once; the streams build on it.

Layer: format. May import only the values (``errors``, ``arns``, ``context``, ``digest``,
``keyprovider``).
"""
