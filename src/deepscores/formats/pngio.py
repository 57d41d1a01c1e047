"""Greyscale PNG files of the dataset: 8-bit images and class masks, 16-bit instance maps.

The encoder is our own few lines over zlib rather than Pillow or OpenCV: pages and label maps are
long runs of one value, so the PNG "Up" filter plus zlib's run-length strategy compresses them about
as well as Pillow at level 6 in a third of its time. Measured on one 1894×2679 page (2-core machine):
≈ 9 / 8 / 16 ms for image / mask / instance map (88 / 27 / 42 KB) with the standard zlib, and
≈ 4 / 2 / 3 ms with zlib-ng (python-zlib-ng; same sizes), against 23 / 19 / 32 ms (115 / 56 / 77 KB)
for Pillow at compress_level 1 and 30 / 29 / 66 ms for OpenCV 4.13's imencode. Every file is a
plain PNG that any reader opens; the bytes depend only on the array and on zlib-ng's version
(pinned).

Reading takes a short path for files laid out as this encoder writes them (IHDR, IDAT…, IEND; grey;
every row "Up"-filtered): zlib-ng inflates and each row is added to the one above. That is 5–10 ms
for a page instead of Pillow's 23 ms, and finishing a dataset reads every page image back for its
classification patches. Every other PNG, and any file the short path finds odd, goes through Pillow.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image
from zlib_ng import zlib_ng

from deepscores.formats import FormatError
from deepscores.formats.atomic import atomic_write_bytes

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_FILTER_UP = 2
_COLOUR_GREY = 0


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(tag)))


#: Bytes of filtered rows handed to the compressor at a time: small enough to stay in the CPU's
#: cache between filtering and compressing, large enough that the loop costs nothing in Python.
_BLOCK_BYTES = 1 << 18


#: Filtered images up to this many bytes (a 220×120 classification patch is 26 KB) are coded with
#: zlib's default strategy: on a patch, Z_RLE takes twice as long (41 against 22 µs), and a dataset
#: writes tens of thousands of patches. Pages keep Z_RLE, which is the faster one on them.
SMALL_IMAGE_BYTES = 1 << 16


def strategy(filtered_bytes: int) -> int:
    """The zlib strategy `encode_png` uses for an image of this many filtered bytes."""
    return zlib_ng.Z_DEFAULT_STRATEGY if filtered_bytes <= SMALL_IMAGE_BYTES else zlib_ng.Z_RLE


def encode_png(array: np.ndarray) -> bytes:
    """PNG bytes of a uint8 (H, W) array (8-bit grey) or a uint16 (H, W) array (16-bit grey)."""
    if array.ndim != 2 or array.dtype not in (np.uint8, np.uint16) or 0 in array.shape:
        raise ValueError(f"encode_png needs a non-empty uint8 or uint16 (H, W) array, got {array.dtype} {array.shape}")
    height, width = array.shape
    depth = 8 * array.dtype.itemsize
    # PNG stores 16-bit samples big-endian; a byte view lets one filter handle both depths.
    dtype = np.dtype(">u2") if depth == 16 else np.dtype(np.uint8)
    row_bytes = width * dtype.itemsize
    block_rows = max(1, _BLOCK_BYTES // (row_bytes + 1))
    body = np.empty((min(height, block_rows), row_bytes + 1), np.uint8)
    body[:, 0] = _FILTER_UP
    # zlib-ng codes the same stream (same sizes) about 3× faster than the standard zlib. Its output
    # does not depend on how the input is split (tests/test_formats.py compares against one call),
    # so the page goes through in blocks: filtering a whole page first, into page-sized arrays,
    # cost as much again as compressing it, most of it in memory traffic.
    compressor = zlib_ng.compressobj(1, zlib_ng.DEFLATED, 15, 8, strategy(height * (row_bytes + 1)))
    parts = []
    for start in range(0, height, block_rows):
        stop = min(height, start + block_rows)
        rows = np.ascontiguousarray(array[start:stop], dtype=dtype).view(np.uint8).reshape(stop - start, row_bytes)
        block = body[: stop - start]
        # "Up" stores each byte minus the one above (mod 256): a staff system repeats row after
        # row, which turns into runs of zeros that Z_RLE codes quickly.
        if start:
            np.subtract(rows[0], above, out=block[0, 1:])
        else:
            block[0, 1:] = rows[0]  # the row above the first one is zeros
        np.subtract(rows[1:], rows[:-1], out=block[1:, 1:])
        above = rows[-1]
        parts.append(compressor.compress(block))
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, depth, _COLOUR_GREY, 0, 0, 0)
    return _SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", b"".join(parts)) + _chunk(b"IEND", b"")


def write_png(path: str | Path, array: np.ndarray) -> None:
    """Write ``encode_png(array)`` to ``path`` atomically."""
    atomic_write_bytes(path, encode_png(array))


def _decode_own(data: bytes) -> np.ndarray | None:
    """The array of a PNG laid out as `encode_png` writes it, or None for any other layout (a
    different chunk, filter, colour type or interlacing; a checksum or length that does not add up),
    which Pillow then reads and, if it is damaged, reports."""
    if data[:8] != _SIGNATURE or len(data) < 33 or data[8:16] != b"\x00\x00\x00\x0dIHDR":
        return None
    width, height, depth, colour, compression, filtering, interlace = struct.unpack(">IIBBBBB", data[16:29])
    limit = Image.MAX_IMAGE_PIXELS  # above it, Pillow's own warning or error decides
    if (depth not in (8, 16) or (colour, compression, filtering, interlace) != (_COLOUR_GREY, 0, 0, 0)
            or width * height == 0 or (limit is not None and width * height > limit)):
        return None
    idat = []
    pos = 8
    while pos + 12 <= len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        tag, end = data[pos + 4:pos + 8], pos + 12 + length
        if end > len(data) or zlib.crc32(data[pos + 4:end - 4]) != struct.unpack(">I", data[end - 4:end])[0]:
            return None
        if tag == b"IEND":
            break
        if tag == b"IDAT":
            idat.append(data[pos + 8:end - 4])
        elif tag != b"IHDR" or pos != 8:
            return None
        pos = end
    else:
        return None
    row_bytes = width * depth // 8
    expected = height * (row_bytes + 1)
    inflater = zlib_ng.decompressobj()
    try:
        raw = inflater.decompress(b"".join(idat), expected + 1)
    except zlib_ng.error:
        return None
    if len(raw) != expected or not inflater.eof:
        return None
    rows = np.frombuffer(raw, np.uint8).reshape(height, row_bytes + 1)
    if np.any(rows[:, 0] != _FILTER_UP):
        return None
    # "Up" undone: each row plus the one above it (mod 256); the first row's "above" is zeros.
    out = np.empty((height, row_bytes), np.uint8)
    out[0] = rows[0, 1:]
    add = np.add
    for y in range(1, height):
        add(out[y - 1], rows[y, 1:], out=out[y])
    return out if depth == 8 else out.view(">u2").astype(np.uint16)


def read_png(path: str | Path) -> np.ndarray:
    """A greyscale PNG as uint8 (8-bit) or uint16 (16-bit) (H, W) array.

    Raises ``FormatError`` naming the file for a missing, truncated or non-greyscale file.
    """
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise FormatError(path, "no such file") from None
    except OSError as exc:
        raise FormatError(path, f"cannot read PNG: {exc}") from None
    array = _decode_own(data)
    if array is not None:
        return array
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            mode = image.mode
            # np.array copies: callers own the result and may write to it.
            if mode == "L":
                return np.array(image, dtype=np.uint8)
            if mode.startswith("I;16"):
                return np.array(image, dtype=np.uint16)
    # Pillow signals a damaged file through several unrelated types.
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error, Image.DecompressionBombError) as exc:
        raise FormatError(path, f"cannot read PNG: {exc or type(exc).__name__}") from None
    raise FormatError(path, f"expected an 8- or 16-bit greyscale PNG, found mode {mode!r}")
