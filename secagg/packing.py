"""Bit packing: a vector of b-bit integers to exactly ceil(m*b/8) bytes and back.

Format (also in csrc/cdef/pack.h): one little-endian bit stream. Element i occupies
stream bits [i*b, (i+1)*b), least significant bit first, and stream bit j is bit
(j mod 8) of byte j // 8. The pad bits after the last element are zero. Since
packed bytes arrive from the network, ``unpack`` refuses a wrong length and
non-zero pad bits.
"""

from __future__ import annotations

import numpy as np

from secagg import bindings

__all__ = ["packed_size", "pack", "unpack"]


def packed_size(m: int, bits: int) -> int:
    """Bytes taken by m packed values of ``bits`` bits: ceil(m * bits / 8)."""
    return bindings.secagg_pack_size(m, bits)


def pack(v: np.ndarray, bits: int) -> bytes:
    """Pack a 1-D C-contiguous vector (storage dtype for ``bits``) of values < 2^bits."""
    return bindings.secagg_pack_encode(v, bits)


def unpack(data: bytes, m: int, bits: int) -> np.ndarray:
    """Unpack m values of ``bits`` bits into a new vector of the storage dtype for ``bits``."""
    return bindings.secagg_pack_decode(data, m, bits)
