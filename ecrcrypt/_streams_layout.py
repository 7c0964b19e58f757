"""Frame prefixes as ``struct`` layouts, packed and unpacked in place (private).

The spec's frame layout and its sizes are in :mod:`ecrcrypt._frames`; these compiled
structs let the writers, the reader and the iterators write or read a whole frame prefix
with one ``pack_into`` / ``unpack_from`` call, so they are defined once for all of them.
"""

from __future__ import annotations

import struct

_REGULAR_PREFIX = struct.Struct(">IQI")  # SeqNum ‖ IV = 8 zero bytes ‖ SeqNum
_FINAL_PREFIX = struct.Struct(">IIQII")  # FFFFFFFF ‖ SeqNum ‖ IV(0^8 ‖ SeqNum) ‖ length
_U32 = struct.Struct(">I")
