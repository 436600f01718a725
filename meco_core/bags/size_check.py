"""Refuse absurd sizes in an intact-looking MCAP or ROS 1 file before rosbags reads it.

Why: rosbags trusts the lengths and offsets a file declares (a 4 GB length field: a 4 GB
read), so a hostile or corrupt bag could exhaust memory before any error. The salvage
readers (`meco_core.bags.salvage`) check every length as they read; this walks the record
headers of a file that looks intact, seeking past bodies, and names the first absurd one.
"""
from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

from meco_core import defaults
from meco_core.bags.salvage import MCAP_MAGIC, ROS1_MAGIC, ros1_fields
from meco_core.errors import InputSizeError

_LZ4_MAGIC = b"\x04\x22\x4d\x18"
_MAX_ROS1_HEADER = 1 << 20  # a ROS 1 record header holds a few short fields


def check_sizes(path: Path) -> str | None:
    """The first absurd size an intact-looking MCAP or ROS 1 file declares, else None.

    rosbags reads a record by the length in front of it (a 4 GB length: a 4 GB read),
    follows the offsets of the MCAP summary and the ROS 1 index, and lz4-decompresses into
    the size a frame declares. This walks the record headers first, seeking past bodies (a
    few small reads per chunk), and reports a length beyond the end of the file or beyond
    MAX_BAG_RECORD_BYTES, an index offset that is not a record, a chunk whose lz4 frame
    declares more than the chunk. Files that do not look intact (no MCAP footer, no ROS 1
    index) are not walked: rosbags refuses them at open and the salvage readers, which
    check every length, take over. Anything else odd is left to rosbags to judge.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(16)
            size = f.seek(0, 2)
            if head.startswith(MCAP_MAGIC):
                _mcap_sizes(f, size)
            elif head.startswith(ROS1_MAGIC):
                _ros1_sizes(f, size)
    except InputSizeError as exc:
        return str(exc)
    except (OSError, struct.error, ValueError, UnicodeDecodeError, KeyError, IndexError):
        pass  # not a size problem; rosbags (then salvage) says what is wrong
    return None


def _chunk_content(f: BinaryIO, what: str, pos: int, usize: int, lz4_at: int | None,
                   chunk: tuple[str, int] | None = None) -> None:
    """Refuse the decompressed size `usize` that `what` (the record at offset `pos`) declares for a
    chunk when it exceeds MAX_BAG_RECORD_BYTES, and, for an lz4 chunk (its frame at offset
    `lz4_at`), a frame declaring more than `usize`. `chunk`: (name, offset) of the chunk
    itself when `what` is an index record pointing at it."""
    if usize > defaults.MAX_BAG_RECORD_BYTES:
        raise InputSizeError(f"{what} at offset {pos} declares {usize} bytes decompressed, more than the "
                             f"{defaults.MAX_BAG_RECORD_BYTES} a bag record may have (MAX_BAG_RECORD_BYTES)")
    if lz4_at is not None:
        name, at = chunk or (what, pos)
        _lz4_declared(f, lz4_at, at, usize, name)


def _lz4_declared(f: BinaryIO, at: int, chunk: int, usize: int, where: str) -> None:
    """Refuse an lz4 frame (at offset `at`) that declares more content than its chunk (`usize`)."""
    f.seek(at)
    head = f.read(14)
    if len(head) == 14 and head[:4] == _LZ4_MAGIC and head[4] & 0x08:
        (content,) = struct.unpack_from("<Q", head, 6)
        if content > usize:
            raise InputSizeError(f"{where} at offset {chunk}: its lz4 frame declares {content} bytes, "
                                 f"the chunk {usize}")


def _record_length(pos: int, body: int, length: int, size: int, what: str) -> None:
    """Refuse the length of a record at `pos` whose body starts at `body`."""
    left = size - body
    if length > left:
        raise InputSizeError(f"{what} at offset {pos} declares {length} bytes, the file has {left} after it")
    if length > defaults.MAX_BAG_RECORD_BYTES:
        raise InputSizeError(f"{what} at offset {pos} declares {length} bytes, more than the "
                             f"{defaults.MAX_BAG_RECORD_BYTES} a bag record may have (MAX_BAG_RECORD_BYTES)")


def _mcap_sizes(f: BinaryIO, size: int) -> None:
    if size < len(MCAP_MAGIC) + 37:
        return
    f.seek(size - 37)
    footer = f.read(37)
    if footer[-8:] != MCAP_MAGIC or footer[0] != 0x02:
        return  # no footer: rosbags refuses it, salvage reads it
    (summary_start,) = struct.unpack_from("<Q", footer, 9)
    seen = _mcap_walk(f, len(MCAP_MAGIC), size, summary_start, stop_ops=(0x02,))
    if summary_start and not seen:  # rosbags reads the summary from there: walk it as rosbags will
        _mcap_walk(f, summary_start, size, summary_start, stop_ops=(0x02, 0x0E))


def _mcap_walk(f: BinaryIO, pos: int, size: int, summary_start: int, stop_ops: tuple[int, ...]) -> bool:
    """Records from `pos` to the footer (or an op in stop_ops); True if summary_start is one of them."""
    seen = False
    while pos < size:
        seen = seen or pos == summary_start
        f.seek(pos)
        head = f.read(9)
        if len(head) < 9 or head[0] in stop_ops:
            return seen
        op, (length,) = head[0], struct.unpack_from("<Q", head, 1)
        _record_length(pos, pos + 9, length, size, f"the MCAP record (op 0x{op:02x})")
        if op == 0x06:
            _mcap_chunk(f, pos, length)
        elif op == 0x08:
            _mcap_chunk_index(f, pos, length, size)
        pos += 9 + length
    return seen


def _mcap_chunk(f: BinaryIO, pos: int, length: int) -> None:
    fixed = f.read(32)
    (usize,), (clen,) = struct.unpack_from("<Q", fixed, 16), struct.unpack_from("<I", fixed, 28)
    if 32 + clen + 8 > length:
        raise InputSizeError(f"the MCAP chunk at offset {pos} declares a compression name of {clen} bytes, "
                             f"its record holds {length}")
    compression = f.read(clen).decode()
    (rlen,) = struct.unpack("<Q", f.read(8))
    if 40 + clen + rlen > length:
        raise InputSizeError(f"the MCAP chunk at offset {pos} declares {rlen} bytes of records, "
                             f"its record holds {length - 40 - clen}")
    _chunk_content(f, "the MCAP chunk", pos, usize, pos + 9 + 40 + clen if compression == "lz4" else None)


def _mcap_chunk_index(f: BinaryIO, pos: int, length: int, size: int) -> None:
    fixed = f.read(36)
    start, chunk_length, map_len = struct.unpack_from("<QQI", fixed, 16)
    if 36 + map_len + 12 > length:
        raise InputSizeError(f"the MCAP chunk index at offset {pos} declares {map_len} bytes of offsets, "
                             f"its record holds {length}")
    f.seek(pos + 9 + 36 + map_len)
    _index_length, clen = struct.unpack("<QI", f.read(12))
    if 36 + map_len + 12 + clen + 16 > length:
        raise InputSizeError(f"the MCAP chunk index at offset {pos} declares a compression name of {clen} "
                             f"bytes, its record holds {length}")
    compression = f.read(clen).decode()
    csize, usize = struct.unpack("<QQ", f.read(16))
    if start + chunk_length > size or csize > chunk_length:
        raise InputSizeError(f"the MCAP chunk index at offset {pos} declares a chunk of {chunk_length} bytes "
                             f"({csize} compressed) at offset {start}, the file has {size}")
    _chunk_content(f, "the MCAP chunk index", pos, usize, start + 9 + 40 + clen if compression == "lz4" else None,
                   chunk=("the MCAP chunk", start))


def _ros1_sizes(f: BinaryIO, size: int) -> None:
    pos = len(ROS1_MAGIC)
    index_pos: int | None = None
    chunks: set[int] = set()
    index_records: set[int] = set()
    chunk_refs: list[int] = []
    while pos < size:
        f.seek(pos)
        head = f.read(4)
        if len(head) < 4:
            raise InputSizeError(f"the ROS 1 record at offset {pos} is cut off by the end of the file")
        (hlen,) = struct.unpack("<I", head)
        if hlen > min(_MAX_ROS1_HEADER, size - pos - 8):
            raise InputSizeError(f"the ROS 1 record at offset {pos} declares a header of {hlen} bytes, the file "
                                 f"has {size - pos - 4} after it (headers hold a few fields; limit {_MAX_ROS1_HEADER})")
        header = ros1_fields(f.read(hlen))
        (dlen,) = struct.unpack("<I", f.read(4))
        _record_length(pos, pos + 8 + hlen, dlen, size, "the ROS 1 record")
        op = header["op"][0]
        if op == 0x03:  # bag header
            (index_pos,) = struct.unpack("<Q", header["index_pos"])
            if index_pos == 0 or index_pos > size:
                return  # not indexed / cut off: rosbags refuses it, salvage reads it
        elif op == 0x05:  # chunk
            (usize,) = struct.unpack("<I", header["size"])
            _chunk_content(f, "the ROS 1 chunk", pos, usize, pos + 8 + hlen if header["compression"] == b"lz4" else None)
            chunks.add(pos)
        elif op in (0x06, 0x07):  # chunk info, connection: what index_pos points at
            index_records.add(pos)
            if op == 0x06:
                chunk_refs.append(struct.unpack("<Q", header["chunk_pos"])[0])
        pos += 8 + hlen + dlen
    if index_pos is not None and index_pos < size and index_pos not in index_records:
        raise InputSizeError(f"the ROS 1 bag header's index_pos {index_pos} is not the start of an index record")
    bad = [p for p in chunk_refs if p not in chunks]
    if bad:
        raise InputSizeError(f"the ROS 1 index points at offset {bad[0]} for a chunk, where no chunk starts")
