"""Best-effort reading of damaged bags (truncated recordings, copies cut short).

rosbags refuses such files at open (no MCAP footer, no ROS 1 index, a sqlite page count
larger than the file), so nothing of a drive whose recorder was killed could be used.
These readers scan the raw records in file order and stop at the first unreadable one,
which keeps every message written before the damage:

- MCAP: records from the start (chunks decompressed; a cut-off chunk is decoded as far
  as its stream goes);
- ROS 1: records from the start, chunks likewise (none, bz2, lz4);
- sqlite3: the header's page count is patched to the pages actually present (through an
  apsw VFS, the file is not copied or modified) and every row that still reads is kept.

They deliver raw serialised messages plus the definitions found in the file;
`meco_core.bags.BagReader` deserialises them and reports what was lost.

Bounded input: every length read from the file is checked before anything of that size is
read or allocated (at most the bytes the file still holds, and MAX_BAG_RECORD_BYTES;
decompression stops at the size a chunk declares). `meco_core.bags.size_check` applies the
same rule to an intact-looking MCAP or ROS 1 file before rosbags, which trusts them, reads it.
"""
from __future__ import annotations

import bz2
import itertools
import struct
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import BinaryIO, Iterator

from meco_core import defaults
from meco_core.errors import InputSizeError

MCAP_MAGIC = b"\x89MCAP0\r\n"
ROS1_MAGIC = b"#ROSBAG V2.0\n"
SQLITE_MAGIC = b"SQLite format 3\x00"
_vfs_ids = itertools.count()


@dataclass
class SalvageConnection:
    """A topic as found in the damaged file."""

    id: int
    topic: str
    msgtype: str  # normalised: pkg/msg/Name
    msgdef: str
    msgdef_format: str  # 'msg', 'idl' or '' (none stored)
    ros1: bool
    count: int = 0


class Truncated(Exception):
    """Internal: the file ends inside a record."""


def _normalize_msgtype(name: str) -> str:
    parts = name.split("/")
    return f"{parts[0]}/msg/{parts[-1]}" if len(parts) == 2 else name


def _remaining(f: BinaryIO) -> int:
    """Bytes left after the position of a file or BytesIO."""
    pos = f.tell()
    end = f.seek(0, 2)
    f.seek(pos)
    return end - pos


def _check_length(f: BinaryIO, n: int, what: str = "a record", at: int | None = None) -> None:
    """Refuse a declared length beyond MAX_BAG_RECORD_BYTES (before reading or allocating it)."""
    if n > defaults.MAX_BAG_RECORD_BYTES:
        raise InputSizeError(f"{what} at offset {f.tell() if at is None else at} declares {n} bytes, more than the "
                             f"{defaults.MAX_BAG_RECORD_BYTES} a bag record may have (MAX_BAG_RECORD_BYTES)")


def _read_exact(f: BinaryIO, n: int) -> bytes:
    """n bytes, or Truncated when the file holds fewer (checked first: nothing of a lying
    length is allocated)."""
    _check_length(f, n)
    left = _remaining(f)
    if n > left:
        raise Truncated(f"file ends {n - left} bytes into a record at offset {f.tell()}")
    return f.read(n)


def _read_upto(f: BinaryIO, n: int) -> bytes:
    """Up to n bytes (a chunk that may be cut off), never more than the file holds."""
    _check_length(f, n, "a chunk")
    return f.read(min(n, _remaining(f)))


def _stream_decompress(data: bytes, compression: str, limit: int | None = None) -> bytes:
    """Decompress as much of a (possibly cut-off) compressed stream as possible, and never
    more than `limit` bytes (the size the chunk declares): InputSizeError beyond it."""
    limit = defaults.MAX_BAG_RECORD_BYTES if limit is None else limit
    if limit > defaults.MAX_BAG_RECORD_BYTES:
        raise InputSizeError(f"a chunk declares {limit} bytes decompressed, more than the "
                             f"{defaults.MAX_BAG_RECORD_BYTES} a bag record may have (MAX_BAG_RECORD_BYTES)")
    if compression in ("", "none"):
        return data
    if compression == "bz2":
        dec = bz2.BZ2Decompressor()
    elif compression == "lz4":
        from lz4.frame import LZ4FrameDecompressor  # rosbags dependency

        dec = LZ4FrameDecompressor()
    elif compression == "zstd":
        try:
            from compression import zstd  # type: ignore[import-not-found]  # Python >= 3.14
        except ImportError:
            from backports import zstd  # type: ignore[no-redef]  # rosbags dependency
        dec = zstd.ZstdDecompressor()
    else:
        raise ValueError(f"unsupported compression {compression!r}")
    out: list[bytes] = []
    total = 0
    step = 1 << 16
    try:
        for i in range(0, len(data), step):
            out.append(dec.decompress(data[i:i + step], limit + 1 - total))
            total += len(out[-1])
            if total > limit:
                break
        while total <= limit and not dec.eof and not dec.needs_input:  # output held back by the cap
            out.append(dec.decompress(b"", limit + 1 - total))
            total += len(out[-1])
            if not out[-1]:
                break
    except Exception:  # the damaged tail; keep what decoded
        pass
    if total > limit:
        raise InputSizeError(f"a {compression} chunk decompresses to more than the {limit} bytes it declares")
    return b"".join(out)


class _Salvage:
    """Common interface: `connections`, `messages(ids)` in file order, `problem` afterwards."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.connections: dict[int, SalvageConnection] = {}
        self.problem: str | None = None  # why the scan stopped early / what was skipped
        self.read_errors = 0

    def messages(self, conn_ids: set[int]) -> Iterator[tuple[int, int, bytes]]:  # pragma: no cover
        raise NotImplementedError

    def close(self) -> None:
        pass


class _RecordSalvage(_Salvage):
    """Formats read as one stream of records from a magic header (MCAP, ROS 1): the scan
    stops at the first truncated or damaged record and says why in `problem`."""

    MAGIC: bytes = b""
    KIND: str = ""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        for _ in self._scan(count_only=True):  # index the connections
            pass

    def _scan(self, count_only: bool, conn_ids: set[int] | None = None) -> Iterator[tuple[int, int, bytes]]:
        self.problem = None
        with open(self.path, "rb") as f:
            if f.read(len(self.MAGIC)) != self.MAGIC:
                raise ValueError(f"{self.path}: not {self.KIND} (bad magic)")
            try:
                yield from self._records(f, count_only, conn_ids, top=True)
            except Truncated as exc:
                self.problem = f"truncated: {exc}"
            except InputSizeError as exc:
                self.problem = f"refused: {exc}; nothing after it is read"
            except (struct.error, ValueError, UnicodeDecodeError, KeyError) as exc:
                self.problem = f"damaged record: {exc}"

    def messages(self, conn_ids: set[int]) -> Iterator[tuple[int, int, bytes]]:
        return self._scan(count_only=False, conn_ids=conn_ids)

    def _records(self, f: BinaryIO, count_only: bool, conn_ids: set[int] | None,
                 top: bool) -> Iterator[tuple[int, int, bytes]]:  # pragma: no cover
        raise NotImplementedError

    def _wanted(self, cid: int, count_only: bool, conn_ids: set[int] | None) -> bool:
        """Whether a message of connection `cid` is yielded; when only counting, counted instead.
        Messages of a connection not (yet) defined are skipped."""
        conn = self.connections.get(cid)
        if conn is None:
            return False
        if count_only:
            conn.count += 1
            return False
        return conn_ids is None or cid in conn_ids


# ---------------------------------------------------------------------------- MCAP
class McapSalvage(_RecordSalvage):
    MAGIC, KIND = MCAP_MAGIC, "an MCAP file"

    def __init__(self, path: Path) -> None:
        self._schemas: dict[int, tuple[str, str, str]] = {}
        super().__init__(path)

    def _records(self, f: BinaryIO, count_only: bool, conn_ids: set[int] | None,
                 top: bool) -> Iterator[tuple[int, int, bytes]]:
        while True:
            op_b = f.read(1)
            if not op_b:
                if top:
                    raise Truncated("file ends before the MCAP footer")
                return
            op = op_b[0]
            (length,) = struct.unpack("<Q", _read_exact(f, 8))
            _check_length(f, length, f"an MCAP record (op 0x{op:02x})", f.tell() - 9)
            if op == 0x06 and top:  # chunk
                yield from self._chunk(f, length, count_only, conn_ids)
                continue
            body = _read_exact(f, length)
            if op == 0x02 and top:  # footer: done
                return
            if op == 0x03:
                sid, = struct.unpack_from("<H", body)
                name, off = _mcap_str(body, 2)
                enc, off = _mcap_str(body, off)
                data, _ = _mcap_str(body, off)
                self._schemas[sid] = (name, enc, data)
            elif op == 0x04:
                cid, sid = struct.unpack_from("<HH", body)
                topic, off = _mcap_str(body, 4)
                if cid not in self.connections:
                    name, enc, data = self._schemas.get(sid, ("", "", ""))
                    fmt = {"ros2msg": "msg", "ros2idl": "idl", "omgidl": "idl"}.get(enc, "")
                    self.connections[cid] = SalvageConnection(cid, topic, name, data, fmt, ros1=False)
            elif op == 0x05:
                cid, _seq, log_time = struct.unpack_from("<HIQ", body)
                if self._wanted(cid, count_only, conn_ids):
                    yield cid, log_time, body[22:]

    def _chunk(self, f: BinaryIO, length: int, count_only: bool,
               conn_ids: set[int] | None) -> Iterator[tuple[int, int, bytes]]:
        start = f.tell()
        _t0, _t1, usize, _crc = struct.unpack("<QQQI", _read_exact(f, 28))
        (clen,) = struct.unpack("<I", _read_exact(f, 4))
        compression = _read_exact(f, clen).decode()
        (rlen,) = struct.unpack("<Q", _read_exact(f, 8))
        _check_length(f, usize, "a chunk's decompressed size")
        data = _read_upto(f, rlen)
        complete = len(data) == rlen
        raw = _stream_decompress(data, compression, usize)
        yield from self._records(BytesIO(raw), count_only, conn_ids, top=False)
        if not complete:
            raise Truncated(f"file ends inside the chunk at offset {start - 9}")
        f.seek(start + length)


def _mcap_str(buf: bytes, off: int) -> tuple[str, int]:
    (n,) = struct.unpack_from("<I", buf, off)
    if off + 4 + n > len(buf):
        raise ValueError("string runs past its record")
    return buf[off + 4:off + 4 + n].decode(), off + 4 + n


# ---------------------------------------------------------------------------- ROS 1
def ros1_fields(buf: bytes) -> dict[str, bytes]:
    out, off = {}, 0
    while off < len(buf):
        (n,) = struct.unpack_from("<I", buf, off)
        key, sep, value = buf[off + 4:off + 4 + n].partition(b"=")
        if not sep:
            raise ValueError("header field without '='")
        out[key.decode()] = value
        off += 4 + n
    return out


class Ros1Salvage(_RecordSalvage):
    MAGIC, KIND = ROS1_MAGIC, "a ROS 1 bag v2.0"

    def _records(self, f: BinaryIO, count_only: bool, conn_ids: set[int] | None,
                 top: bool) -> Iterator[tuple[int, int, bytes]]:
        while True:
            head = f.read(4)
            if not head:
                return
            if len(head) < 4:
                raise Truncated("file ends inside a record header")
            (hlen,) = struct.unpack("<I", head)
            header = ros1_fields(_read_exact(f, hlen))
            (dlen,) = struct.unpack("<I", _read_exact(f, 4))
            op = header["op"][0]
            if op == 0x05 and top:  # chunk: decode what is there, even if cut off
                size = struct.unpack("<I", header["size"])[0] if "size" in header else None
                data = _read_upto(f, dlen)
                raw = _stream_decompress(data, header["compression"].decode(), size)
                yield from self._records(BytesIO(raw), count_only, conn_ids, top=False)
                if len(data) != dlen:
                    raise Truncated("file ends inside a chunk")
                continue
            data = _read_exact(f, dlen)
            if op == 0x07:
                cid = struct.unpack("<I", header["conn"])[0]
                if cid not in self.connections:
                    info = ros1_fields(data)
                    topic = header["topic"].decode()
                    self.connections[cid] = SalvageConnection(
                        cid, topic, _normalize_msgtype(info["type"].decode()),
                        info.get("message_definition", b"").decode(), "msg", ros1=True)
            elif op == 0x02:
                cid = struct.unpack("<I", header["conn"])[0]
                sec, nsec = struct.unpack("<II", header["time"])
                if self._wanted(cid, count_only, conn_ids):
                    yield cid, sec * 1_000_000_000 + nsec, data


# ---------------------------------------------------------------------------- sqlite3
class Sqlite3Salvage(_Salvage):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        import apsw  # rosbags dependency; Python's sqlite3 cannot take a custom VFS

        with open(path, "rb") as fh:
            hdr = fh.read(100)
        if len(hdr) < 100 or not hdr.startswith(SQLITE_MAGIC):
            raise ValueError(f"{path}: not an sqlite3 database (bad header)")
        page = struct.unpack(">H", hdr[16:18])[0]
        page = 65536 if page == 1 else page
        in_header = struct.unpack(">I", hdr[28:32])[0]
        present = path.stat().st_size // page
        self.pages_missing = max(0, in_header - present)
        self._vfs_name = f"meco-salvage-{next(_vfs_ids)}"
        self._vfs = _make_patched_vfs(apsw, self._vfs_name, present)
        self._apsw = apsw
        try:
            self.db = apsw.Connection(f"file:{path}?immutable=1", vfs=self._vfs_name,
                                      flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)
            self._load(in_header)
        except BaseException:
            if hasattr(self, "db"):
                self.db.close()
            self._vfs.unregister()
            raise

    def _load(self, in_header: int) -> None:
        apsw = self._apsw
        defs: dict[str, tuple[str, str]] = {}
        try:
            for name, enc, text in self.db.execute(
                    "SELECT topic_type, encoding, encoded_message_definition FROM message_definitions"):
                defs[name] = (text, {"ros2msg": "msg", "ros2idl": "idl"}.get(enc, ""))
        except apsw.Error:
            pass  # older schema without definitions: the default typestore is used
        for cid, topic, msgtype in self.db.execute("SELECT id, name, type FROM topics"):
            text, fmt = defs.get(msgtype, ("", ""))
            self.connections[cid] = SalvageConnection(cid, topic, msgtype, text, fmt, ros1=False)
        self._rows = self._index()
        for _mid, cid, _t in self._rows:
            if cid in self.connections:
                self.connections[cid].count += 1
        if self.pages_missing:
            self.problem = f"truncated: {self.pages_missing} of {in_header} database pages are missing"

    def _index(self) -> list[tuple[int, int, int]]:
        rows: list[tuple[int, int, int]] = []
        try:
            for row in self.db.execute("SELECT id, topic_id, timestamp FROM messages ORDER BY timestamp"):
                rows.append(row)
            return rows
        except self._apsw.Error:
            pass  # timestamp index damaged: walk the table itself, as far as it reads
        rows = []
        try:
            for row in self.db.execute("SELECT id, topic_id, timestamp FROM messages"):
                rows.append(row)
        except self._apsw.Error as exc:
            self.problem = f"message table damaged after {len(rows)} rows: {exc}"
        rows.sort(key=lambda r: r[2])
        return rows

    def messages(self, conn_ids: set[int]) -> Iterator[tuple[int, int, bytes]]:
        for mid, cid, t in self._rows:
            if cid not in conn_ids:
                continue
            try:
                row = self.db.execute("SELECT data FROM messages WHERE id = ?", (mid,)).fetchone()
            except self._apsw.Error:
                self.read_errors += 1
                continue
            if row is not None:
                yield cid, t, bytes(row[0])

    def close(self) -> None:
        self.db.close()
        self._vfs.unregister()


def _make_patched_vfs(apsw, name: str, pages: int):  # type: ignore[no-untyped-def]
    """A VFS that reports `pages` as the database size in the sqlite header (offset 28)."""

    class File(apsw.VFSFile):  # type: ignore[misc, name-defined]
        def __init__(self, vfs, filename, flags):  # type: ignore[no-untyped-def]
            super().__init__("", filename, flags)

        def xRead(self, amount, offset):  # type: ignore[no-untyped-def]  # noqa: N802
            data = super().xRead(amount, offset)
            if offset <= 28 and offset + len(data) >= 32:
                b = bytearray(data)
                b[28 - offset:32 - offset] = struct.pack(">I", pages)
                data = bytes(b)
            return data

    class VFS(apsw.VFS):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__(name, "")

        def xOpen(self, filename, flags):  # type: ignore[no-untyped-def]  # noqa: N802
            return File(self, filename, flags)

    return VFS()


# ---------------------------------------------------------------------------- declared sizes
# ---------------------------------------------------------------------------- entry
def storage_files(path: Path) -> list[Path]:
    """The storage files of a bag path (a file itself, or the .db3/.mcap files of a rosbag2 folder)."""
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix in (".db3", ".mcap"))
    return [path]


def open_salvage(path: Path) -> _Salvage:
    """A salvage reader for one storage file, chosen by its magic bytes; ValueError if unknown."""
    with open(path, "rb") as fh:
        head = fh.read(16)
    if head.startswith(MCAP_MAGIC):
        return McapSalvage(path)
    if head.startswith(ROS1_MAGIC):
        return Ros1Salvage(path)
    if head.startswith(SQLITE_MAGIC):
        return Sqlite3Salvage(path)
    raise ValueError(f"{path}: not an MCAP, sqlite3 or ROS 1 bag file (unknown magic {head[:8]!r})")
