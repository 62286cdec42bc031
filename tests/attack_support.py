"""Hostile inputs for the security tests, made small on disk: a pixel bomb PNG."""

from __future__ import annotations

import struct
import zlib
from functools import lru_cache

BOMB_SIDE = 30_000  # 900 million pixels declared; a 1-bit PNG of zeros compresses to ~110 KB


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@lru_cache(maxsize=1)
def png_bomb(side: int = BOMB_SIDE) -> bytes:
    """A valid black 1-bit greyscale PNG of side x side pixels (decodes to ~900 MB as 'L')."""
    row = b"\x00" * (1 + (side + 7) // 8)  # filter byte + packed bits
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
