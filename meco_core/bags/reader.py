"""The one rosbag layer of meco: read and write ROS 1 and rosbag2 (sqlite3, mcap) bags.

Used by `meco data from-bag`, `meco data make-bag` and replay evaluation, so every tool
opens bags, reports bad input and builds messages the same way. Built on `rosbags`
(pure Python, no ROS install). Everything that goes wrong with a bag surfaces as a
`BagError` naming the bag and the cause, never as a traceback from inside rosbags:

- missing path, unknown format;
- damaged or truncated files: rosbags refuses them at open, so they are re-read with
  `meco_core.bags.salvage`; `messages()` yields every message that could be read and then
  raises a `BagError` saying what was lost (`strict=False` only records it in `problems`);
- missing topics (`MissingTopicError` lists the topics that exist, with types and counts);
- message types without a definition in the bag or the default typestore (`UnknownTypeError`);
- absurd declared sizes (a 4 GB record length, an index pointing into the middle of a record):
  `size_check.check_sizes` walks an MCAP / ROS 1 file's record headers before rosbags reads it,
  and such a file is read in salvage mode up to the lie, which is reported like damage.
  Message-level sizes (CDR sequence lengths) are checked by rosbags against the raw message:
  such a message is skipped and counted as undecodable.

Message builders/readers (Image, CompressedImage, CameraInfo, PointCloud2, TF) live in
`meco_core.bags.messages` and are re-exported here.
"""
from __future__ import annotations

import heapq
import itertools
import shutil
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Literal

from rosbags.highlevel import AnyReader
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag1 import Writer as Ros1Writer
from rosbags.rosbag2 import StoragePlugin, Writer as Ros2Writer
from rosbags.typesys import Stores, get_types_from_idl, get_types_from_msg, get_typestore

from meco_core.bags import salvage as bag_salvage
from meco_core.bags.size_check import check_sizes
from meco_core.bags.messages import *  # noqa: F401,F403  (re-export: one import for bag tools)
from meco_core.bags.messages import TF_MESSAGE
from meco_core.defaults import BAG_STORAGES
from meco_core.errors import InputSizeError, MecoError

Storage = Literal["sqlite3", "mcap", "ros1"]
STORAGES = BAG_STORAGES
ROS2_DISTROS = {"humble": Stores.ROS2_HUMBLE, "iron": Stores.ROS2_IRON, "jazzy": Stores.ROS2_JAZZY,
                "kilted": Stores.ROS2_KILTED}
DEFAULT_DISTRO = "kilted"  # the ROS 2 of the PyPI wheels this project runs on
_REORDER_MESSAGES = 512  # salvage: file order -> time order within this window
_REORDER_BYTES = 256 << 20


class BagError(MecoError, RuntimeError):
    """A bag could not be read or written as asked; the message names the bag and the cause."""

    def __init__(self, path: str | Path, message: str, cause: BaseException | None = None) -> None:
        self.path = Path(path)
        self.cause = cause
        text = f"{path}: {message}"
        if cause is not None:
            text += f" ({type(cause).__name__}: {cause})"
        super().__init__(text)


class MissingTopicError(BagError):
    """Requested topics are not in the bag; `available` maps the topics that are to their type."""

    def __init__(self, path: str | Path, missing: list[str], available: dict[str, "TopicInfo"]) -> None:
        self.missing = missing
        self.available = available
        listing = ", ".join(f"{t.name} ({t.msgtype}, {t.count} msgs)" for t in available.values()) or "none"
        super().__init__(path, f"topic(s) {missing} not in the bag; available topics: {listing}")


class UnknownTypeError(BagError):
    """A topic's message type has no definition in the bag nor in the default typestore."""


@dataclass(frozen=True)
class TopicInfo:
    name: str
    msgtype: str
    count: int


@dataclass
class BagMessage:
    topic: str
    msgtype: str
    log_ns: int  # time the recorder received it (bag timestamp)
    msg: Any  # deserialised rosbags message


# ------------------------------------------------------------------ typestores
@lru_cache(maxsize=None)
def ros2_typestore(distro: str = DEFAULT_DISTRO) -> Any:
    """The rosbags typestore of a ROS 2 distribution (shared; do not register types into it)."""
    try:
        return get_typestore(ROS2_DISTROS[distro])
    except KeyError:
        raise ValueError(f"unknown ROS 2 distro {distro!r}; known: {sorted(ROS2_DISTROS)}") from None


@lru_cache(maxsize=None)
def ros1_typestore() -> Any:
    """Noetic typestore plus tf2_msgs/TFMessage, which rosbags' noetic store lacks."""
    ts = get_typestore(Stores.ROS1_NOETIC)
    if TF_MESSAGE not in ts.fielddefs:
        ts.register(get_types_from_msg("geometry_msgs/TransformStamped[] transforms", TF_MESSAGE))
    return ts


def _types_from_definition(msgtype: str, text: str, fmt: str) -> dict[str, Any]:
    if fmt == "msg":
        return dict(get_types_from_msg(text, msgtype))
    if fmt == "idl":
        sep = "=" * 80 + "\n"
        parts = [p.split("\n", 1)[1] for p in text.split(sep)[1:]] if text.startswith(sep + "IDL: ") else [text]
        out: dict[str, Any] = {}
        for part in parts:
            out.update(get_types_from_idl(part))
        return out
    return {}


# ------------------------------------------------------------------ reading
def _storage_path(path: Path) -> Path:
    """What rosbags should open: a rosbag2 folder, or its only storage file when metadata.yaml is gone."""
    if not path.is_dir() or (path / "metadata.yaml").exists():
        return path
    files = bag_salvage.storage_files(path)
    if len(files) == 1:
        return files[0]  # e.g. a recording killed before it wrote metadata.yaml
    if not files:
        raise BagError(path, "not a bag: a folder without metadata.yaml or .db3/.mcap files")
    raise BagError(path, f"folder without metadata.yaml holds several storage files {[f.name for f in files]}; "
                         "pass one of them")


def _declared_size_problem(target: Path) -> InputSizeError | None:
    """The first absurd size declared by a storage file of `target` (see size_check.check_sizes)."""
    for path in bag_salvage.storage_files(target):
        problem = check_sizes(path)
        if problem is not None:
            return InputSizeError(f"{path.name}: {problem}")
    return None


class BagReader:
    """Read any bag (ROS 1 .bag, rosbag2 folder, .db3 or .mcap file); use as a context manager.

    `distro` picks the ROS 2 typestore used for bags that carry no message definitions
    (older sqlite3 bags); bags with definitions are decoded with their own.
    """

    def __init__(self, path: str | Path, distro: str = DEFAULT_DISTRO) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise BagError(self.path, "no such bag file or folder")
        self.distro = distro
        self.problems: list[str] = []  # what was lost or skipped (damaged data, undecodable messages)
        self.salvaged = False  # True when rosbags refused the file and bag_salvage reads it
        self._any: AnyReader | None = None
        self._salvage: list[Any] = []
        self._salvage_ids: dict[int, tuple[int, int]] = {}  # global id -> (file index, connection id)
        self._topics: dict[str, TopicInfo] = {}
        self._is_ros1 = False
        self._typestore: Any = None

    # -- open / close
    def open(self) -> "BagReader":
        target = _storage_path(self.path)
        self._is_ros1 = target.suffix == ".bag"
        default = ros1_typestore() if self._is_ros1 else ros2_typestore(self.distro)
        oversize = _declared_size_problem(target)
        if oversize is not None:  # rosbags would read (allocate) what the file declares: salvage up to it
            self._open_salvage(oversize)
            return self
        try:
            reader = AnyReader([target], default_typestore=default)
            reader.open()
        except Exception as exc:  # damaged file: rosbags gives up at open, salvage what is there
            self._open_salvage(exc)
            return self
        self._any = reader
        self._typestore = reader.typestore
        self._topics = {name: TopicInfo(name, info.msgtype or "?", info.msgcount)
                        for name, info in reader.topics.items()}
        return self

    def _open_salvage(self, exc: Exception) -> None:
        files = bag_salvage.storage_files(self.path)
        if not files:
            raise BagError(self.path, "cannot read the bag", exc) from None
        try:
            self._salvage = [bag_salvage.open_salvage(f) for f in files]
        except Exception as exc2:
            self.close()
            raise BagError(self.path, f"cannot read the bag; not recoverable either ({exc2})", exc) from None
        self.salvaged = True
        self._is_ros1 = any(c.ros1 for s in self._salvage for c in s.connections.values())
        self.problems.append(f"damaged bag, read in salvage mode ({type(exc).__name__}: {exc})")
        default = ros1_typestore() if self._is_ros1 else ros2_typestore(self.distro)
        ts = get_typestore(Stores.EMPTY)
        counts: dict[tuple[str, str], int] = {}
        gid = itertools.count(1)
        for i, sal in enumerate(self._salvage):
            for cid, conn in sal.connections.items():
                self._salvage_ids[next(gid)] = (i, cid)
                counts[(conn.topic, conn.msgtype)] = counts.get((conn.topic, conn.msgtype), 0) + conn.count
                try:
                    ts.register(_types_from_definition(conn.msgtype, conn.msgdef, conn.msgdef_format))
                except Exception as err:  # a broken definition: fall back to the default store below
                    self.problems.append(f"{conn.topic}: unusable message definition ({err})")
        ts.register({k: v for k, v in default.fielddefs.items() if k not in ts.fielddefs})
        self._typestore = ts
        self._topics = {t: TopicInfo(t, mt, n) for (t, mt), n in sorted(counts.items())}

    def close(self) -> None:
        if self._any is not None:
            self._any.close()
            self._any = None
        for sal in self._salvage:
            sal.close()
        self._salvage = []

    def __enter__(self) -> "BagReader":
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- topics
    @property
    def topics(self) -> dict[str, TopicInfo]:
        """topic -> TopicInfo(name, msgtype, count) (counts of a damaged bag: what is readable)."""
        return dict(self._topics)

    def topics_of_type(self, *msgtypes: str) -> list[str]:
        return [t.name for t in self._topics.values() if t.msgtype in msgtypes]

    def require(self, topics: Iterable[str], msgtypes: dict[str, tuple[str, ...]] | None = None) -> None:
        """Raise MissingTopicError for absent topics and BagError for topics of the wrong type."""
        topics = list(topics)
        missing = [t for t in topics if t not in self._topics]
        if missing:
            raise MissingTopicError(self.path, missing, self._topics)
        for topic, allowed in (msgtypes or {}).items():
            have = self._topics[topic].msgtype
            if have not in allowed:
                raise BagError(self.path, f"topic {topic} has type {have}, expected {' or '.join(allowed)}")

    # -- messages
    def _problem(self, text: str) -> None:
        if text not in self.problems:
            self.problems.append(text)

    def _deserializer(self, topic: str) -> Callable[[bytes], Any]:
        msgtype = self._topics[topic].msgtype
        ts = self._typestore
        if msgtype not in ts.fielddefs:
            default = ros1_typestore() if self._is_ros1 else ros2_typestore(self.distro)
            if msgtype not in default.fielddefs:
                raise UnknownTypeError(self.path, f"topic {topic} has message type {msgtype!r}, defined neither "
                                                  "in the bag nor in the default typestore; cannot decode it")
            ts = default
        if self._is_ros1:
            return lambda raw: ts.deserialize_ros1(raw, msgtype)
        return lambda raw: ts.deserialize_cdr(raw, msgtype)

    def _raw(self, topics: set[str]) -> Iterator[tuple[str, int, bytes]]:
        """(topic, log_ns, raw) in time order."""
        if self._any is not None:
            conns = [c for c in self._any.connections if c.topic in topics]
            for conn, t, raw in self._any.messages(connections=conns):
                yield conn.topic, t, raw
            return
        yield from self._raw_salvage(topics)

    def _raw_salvage(self, topics: set[str]) -> Iterator[tuple[str, int, bytes]]:
        heap: list[tuple[int, int, str, bytes]] = []
        size = 0
        seq = itertools.count()
        for sal in self._salvage:
            ids = {cid for cid, c in sal.connections.items() if c.topic in topics}
            for cid, t, raw in sal.messages(ids):
                heapq.heappush(heap, (t, next(seq), sal.connections[cid].topic, raw))
                size += len(raw)
                while len(heap) > _REORDER_MESSAGES or size > _REORDER_BYTES:
                    t0, _, topic, data = heapq.heappop(heap)
                    size -= len(data)
                    yield topic, t0, data
            if sal.problem:
                self._problem(f"{sal.path.name}: {sal.problem}")
            if sal.read_errors:
                self._problem(f"{sal.path.name}: {sal.read_errors} unreadable message(s) skipped")
        while heap:
            t0, _, topic, data = heapq.heappop(heap)
            yield topic, t0, data

    def messages(self, topics: Iterable[str], strict: bool = True) -> Iterator[BagMessage]:
        """Deserialised messages of `topics` in bag-time order.

        Damaged data: everything readable is yielded first; then, with strict=True, a
        BagError says what was lost (strict=False: the caller checks `self.problems`).
        """
        if self._any is None and not self._salvage:
            raise BagError(self.path, "bag is not open (use `with BagReader(path) as bag:`)")
        wanted = list(dict.fromkeys(topics))
        self.require(wanted)
        decode = {t: self._deserializer(t) for t in wanted}
        n_before = len(self.problems)
        stream = self._raw(set(wanted))
        count = 0
        bad_decode = 0
        while True:
            try:
                topic, t, raw = next(stream)
            except StopIteration:
                break
            except Exception as exc:  # storage damaged mid-file
                self._problem(f"reading stopped after {count} messages: {type(exc).__name__}: {exc}")
                break
            try:
                msg = decode[topic](raw)
            except Exception as exc:
                bad_decode += 1
                if bad_decode <= 3:
                    self._problem(f"{topic} @ {t} ns: undecodable message ({type(exc).__name__}: {exc})")
                continue
            count += 1
            yield BagMessage(topic, self._topics[topic].msgtype, t, msg)
        if bad_decode > 3:
            self._problem(f"{bad_decode} undecodable messages in total")
        new = self.problems[n_before:] if not self.salvaged else self.problems
        if new and strict:
            raise BagError(self.path, f"read {count} message(s) of {wanted}, but the bag is damaged: "
                                      + "; ".join(new))


# ------------------------------------------------------------------ writing
def _latched_qos() -> list[Qos]:
    """transient_local, as /tf_static publishers offer it (late joiners of a replay still get it)."""
    zero = QosTime(0, 0)
    return [Qos(QosHistory.KEEP_LAST, 1, QosReliability.RELIABLE, QosDurability.TRANSIENT_LOCAL, zero, zero,
                QosLiveliness.AUTOMATIC, zero, False)]


class BagWriter:
    """Write a bag: `storage` 'sqlite3' or 'mcap' (rosbag2 folder) or 'ros1' (.bag file).

    Messages are typestore objects (build them with the helpers of bag_messages using
    `writer.typestore`); topics are registered once with `add_topic`.
    """

    def __init__(self, path: str | Path, storage: str = "sqlite3", distro: str = DEFAULT_DISTRO,
                 overwrite: bool = False) -> None:
        if storage not in STORAGES:
            raise ValueError(f"storage must be one of {STORAGES}, not {storage!r}")
        self.path = Path(path)
        self.storage = storage
        if storage == "ros1" and self.path.suffix != ".bag":
            raise ValueError(f"{self.path}: a ROS 1 bag must be named *.bag (readers tell the format by it)")
        if storage != "ros1" and self.path.suffix in (".bag", ".db3", ".mcap"):
            raise ValueError(f"{self.path}: a rosbag2 bag is a folder; give a name without {self.path.suffix!r}")
        if self.path.exists():
            if not overwrite:
                raise BagError(self.path, "exists already (pass overwrite to replace it)")
            _remove_bag(self.path)
        self.typestore = ros1_typestore() if storage == "ros1" else ros2_typestore(distro)
        self.counts: dict[str, int] = {}
        self._types: dict[str, str] = {}
        self._conns: dict[str, Any] = {}
        self._serialize = self.typestore.serialize_ros1 if storage == "ros1" else self.typestore.serialize_cdr
        try:
            if storage == "ros1":
                self._writer: Any = Ros1Writer(self.path)
            else:
                plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
                self._writer = Ros2Writer(self.path, version=Ros2Writer.VERSION_LATEST, storage_plugin=plugin)
            self._writer.open()
        except Exception as exc:
            raise BagError(self.path, "cannot create the bag", exc) from None

    def add_topic(self, name: str, msgtype: str, latched: bool = False) -> None:
        """Register a topic; `latched` for /tf_static-like topics (ROS 1 latching, ROS 2 transient_local)."""
        if name in self._conns:
            raise ValueError(f"topic {name} was added already")
        if msgtype not in self.typestore.fielddefs:
            raise UnknownTypeError(self.path, f"message type {msgtype!r} is not in the typestore")
        if self.storage == "ros1":
            conn = self._writer.add_connection(name, msgtype, typestore=self.typestore, latching=1 if latched else None)
        else:
            conn = self._writer.add_connection(name, msgtype, typestore=self.typestore,
                                               offered_qos_profiles=_latched_qos() if latched else ())
        self._conns[name] = conn
        self._types[name] = msgtype
        self.counts[name] = 0

    def write(self, topic: str, stamp_ns: int, msg: Any) -> None:
        """Serialise `msg` and store it at bag time `stamp_ns`."""
        if topic not in self._conns:
            raise KeyError(f"topic {topic} was not added; added: {sorted(self._conns)}")
        self._writer.write(self._conns[topic], int(stamp_ns), self._serialize(msg, self._types[topic]))
        self.counts[topic] += 1

    def close(self) -> None:
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.close()

    def abort(self) -> None:
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.abort()

    def __enter__(self) -> "BagWriter":
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _remove_bag(path: Path) -> None:
    """Delete an existing bag, refusing anything that does not look like one."""
    if path.is_dir():
        entries = list(path.iterdir())
        if not all(p.name == "metadata.yaml" or p.suffix in (".db3", ".mcap", ".zstd") for p in entries):
            raise BagError(path, "exists and is not a rosbag2 folder; refusing to delete it")
        shutil.rmtree(path)
    elif path.suffix == ".bag":
        path.unlink()
    else:
        raise BagError(path, "exists and is not a bag; refusing to delete it")
