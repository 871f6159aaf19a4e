"""The journal's record format: plain data that cannot execute, checked before it is trusted.

A record is a 20-byte frame and a payload::

    b"CFJ2" | payload length (u64) | crc32 of the payload (u32) | crc32 of the 16 bytes before (u32)
    payload = JSON length (u32) | JSON document | raw little-endian array bytes, back to back

The JSON document is ``{"task": [...], "result": {...}, "arrays": [[dtype, shape], ...]}``. The
result is written generically over its dataclass fields (nested dataclasses such as
:class:`~cfgen.explanation.Explanation` become objects): a numpy array becomes
``{"__ndarray__": i}``, pointing at entry ``i`` of ``arrays`` (dtype one of bool/int/uint/float/
complex, e.g. ``"<f8"``); everything else must be JSON. Decoding builds only the known result
dataclass and plain values, so a crafted file can at worst be refused, never run code.

Reading never trusts a length before the frame checksum has passed, never allocates more than
the file holds, and resynchronises after a damaged stretch on the next valid frame (the magic,
a valid frame checksum and a valid payload checksum), so one flipped byte costs one record.

Format-1 journals of older cfgen versions (``b"CFJ1"`` frames around a pickle) are read only when
``CFGEN_TRUST_PICKLED_JOURNAL=1`` says the file is one's own (unpickling runs code).
"""

from __future__ import annotations

import functools
import json
import math
import mmap
import os
import pickle
import re
import struct
import typing
import zlib
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from cfgen.errors import ConfigError

MAGIC = b"CFJ2"
FRAME = struct.Struct("<4sQII")  # magic, payload length, payload crc32, crc32 of the first 16 B
_FRAME_HEAD = struct.Struct("<4sQI")
_JSON_LEN = struct.Struct("<I")
MAX_RECORD = 1 << 30  # bytes: a larger length is damage, not a record
LEGACY_MAGIC = b"CFJ1"
LEGACY_HEADER = struct.Struct("<4sIQ")  # magic, crc32, length, then pickle bytes
TRUST_ENV = "CFGEN_TRUST_PICKLED_JOURNAL"
_ND = "__ndarray__"
_DTYPE = re.compile(r"[<>|][biufc][1-9][0-9]?\Z")


class RecordError(ValueError):
    """A record whose checksums pass but whose content is not a result this cfgen can build."""


class UntrustedJournal(ConfigError):
    """A pickled (legacy) journal met without the opt-in; loading it could run its code."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            f"{path} holds pickled records (a format-1 journal of an older cfgen): reading "
            "them could run code from the file, so it is not read; rerun without "
            "experiment_params.resume (or in a new hydra.run.dir), or set "
            f"{TRUST_ENV}=1 if you wrote this journal yourself"
        )


def trust_pickled() -> bool:
    """Whether the user opted in to reading pickled journals (``CFGEN_TRUST_PICKLED_JOURNAL=1``)."""
    return os.environ.get(TRUST_ENV, "").strip() == "1"


def result_type() -> type:
    """The dataclass records decode into (lazy: TaskResult is moving to cfgen.runner.task)."""
    from cfgen.runner.task import TaskResult

    return TaskResult


# ---------------------------------------------------------------------------- encoding
def _pack(value: Any, arrays: list[np.ndarray], where: str) -> Any:
    """``value`` as JSON, its arrays appended to ``arrays`` and replaced by placeholders."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biufc":
            raise TypeError(f"{where}: a {value.dtype} array cannot be stored in the journal")
        arrays.append(value)
        return {_ND: len(arrays) - 1}
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _pack(getattr(value, f.name), arrays, f"{where}.{f.name}")
                for f in fields(value)}
    if isinstance(value, dict):
        return {str(k): _pack(v, arrays, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_pack(v, arrays, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, np.generic):
        return _pack(value.item(), arrays, where)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"{where}: a {type(value).__name__} cannot be stored in the journal "
                    "(JSON values and numeric numpy arrays only)")


def encode_payload(task: tuple, result: Any) -> bytes:
    """The payload of one record: ``task`` (a tuple of ints) and any dataclass ``result``."""
    arrays: list[np.ndarray] = []
    doc = {"task": [int(v) for v in task], "result": _pack(result, arrays, "result")}
    blobs, spec = [], []
    for a in arrays:
        a = np.ascontiguousarray(a)
        le = a.astype(a.dtype.newbyteorder("<"), copy=False)
        spec.append([le.dtype.str, list(le.shape)])
        blobs.append(le.tobytes())
    doc["arrays"] = spec
    text = json.dumps(doc, separators=(",", ":")).encode()
    return b"".join([_JSON_LEN.pack(len(text)), text, *blobs])


def frame(payload: bytes) -> bytes:
    """One framed record (see the module docstring)."""
    if len(payload) > MAX_RECORD:
        raise ValueError(f"a journal record of {len(payload)} bytes exceeds {MAX_RECORD}")
    head = _FRAME_HEAD.pack(MAGIC, len(payload), zlib.crc32(payload))
    return head + struct.pack("<I", zlib.crc32(head)) + payload


def encode_record(task: tuple, result: Any) -> bytes:
    """A framed record of ``(task tuple, TaskResult)``."""
    return frame(encode_payload(tuple(task), result))


# ---------------------------------------------------------------------------- decoding
def _known_dataclass(name: str) -> type | None:
    """A string annotation ``get_type_hints`` could not resolve, matched against the known ones."""
    from cfgen.explanation import Explanation

    return Explanation if name.strip("'\" ").rsplit(".", 1)[-1] == "Explanation" else None


@functools.cache
def _nested(cls: type) -> dict[str, type]:
    """Fields of dataclass ``cls`` whose type is (or may be) a dataclass: decoded recursively."""
    try:
        hints: dict[str, Any] = typing.get_type_hints(cls)
    except Exception:  # noqa: BLE001 - forward references that do not resolve: use the text
        hints = {f.name: f.type for f in fields(cls)}
    out: dict[str, type] = {}
    for name, hint in hints.items():
        for cand in (hint, *typing.get_args(hint)):
            if isinstance(cand, str):
                cand = _known_dataclass(cand)
            if isinstance(cand, type) and is_dataclass(cand):
                out[name] = cand
                break
    return out


def _arrays(spec: Any, blob: bytes) -> list[np.ndarray]:
    """The arrays described by ``spec`` (``[[dtype, shape], ...]``), which must fill ``blob``."""
    if not isinstance(spec, list):
        raise RecordError("arrays is not a list")
    out, pos = [], 0
    for item in spec:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)
                and _DTYPE.match(item[0]) and isinstance(item[1], list)
                and all(type(n) is int and n >= 0 for n in item[1])):
            raise RecordError(f"bad array description {item!r}"[:200])
        dtype = np.dtype(item[0])
        if dtype.hasobject or dtype.kind not in "biufc":
            raise RecordError(f"array dtype {item[0]!r} is not allowed")
        count = math.prod(item[1])
        size = count * dtype.itemsize
        if pos + size > len(blob):
            raise RecordError("array bytes run past the record")
        flat = np.frombuffer(blob, dtype=dtype, count=count, offset=pos) if count else \
            np.empty(0, dtype)
        out.append(flat.reshape(item[1]).astype(dtype.newbyteorder("=")))
        pos += size
    if pos != len(blob):
        raise RecordError("record holds bytes no array describes")
    return out


def _restore(value: Any, arrays: list[np.ndarray]) -> Any:
    if isinstance(value, dict):
        if set(value) == {_ND}:
            i = value[_ND]
            if type(i) is not int or not 0 <= i < len(arrays):
                raise RecordError(f"array reference {i!r} out of range")
            return arrays[i]
        return {k: _restore(v, arrays) for k, v in value.items()}
    if isinstance(value, list):
        return [_restore(v, arrays) for v in value]
    return value


def _build(cls: type, doc: Any, arrays: list[np.ndarray]) -> Any:
    """An instance of dataclass ``cls`` from its JSON object; unknown keys are dropped, missing
    ones take the field's default (a record written before a field was added)."""
    if not isinstance(doc, dict):
        raise RecordError(f"{cls.__name__} is not a JSON object")
    nested = _nested(cls)
    kwargs = {}
    for f in fields(cls):
        if f.name not in doc:
            continue
        v, sub = doc[f.name], nested.get(f.name)
        is_obj = isinstance(v, dict) and set(v) != {_ND}
        kwargs[f.name] = _build(sub, v, arrays) if sub is not None and is_obj \
            else _restore(v, arrays)
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise RecordError(f"cannot build {cls.__name__}: {exc}") from None


def decode_payload(payload: bytes, cls: type) -> tuple[tuple, Any]:
    """``(task tuple, cls instance)`` from one payload; :class:`RecordError` if it does not fit."""
    if len(payload) < _JSON_LEN.size:
        raise RecordError("record too short")
    (n,) = _JSON_LEN.unpack_from(payload)
    if _JSON_LEN.size + n > len(payload):
        raise RecordError("JSON length runs past the record")
    try:
        doc = json.loads(payload[_JSON_LEN.size:_JSON_LEN.size + n])
    except (ValueError, UnicodeDecodeError) as exc:
        raise RecordError(f"bad JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("task"), list) \
            or not all(type(v) is int for v in doc["task"]):
        raise RecordError("no task tuple")
    arrays = _arrays(doc.get("arrays"), payload[_JSON_LEN.size + n:])
    return tuple(doc["task"]), _build(cls, doc.get("result"), arrays)


def decode_record(payload: bytes) -> tuple[tuple, Any]:
    """``(task tuple, TaskResult)`` from one record's payload."""
    return decode_payload(payload, result_type())


# ---------------------------------------------------------------------------- reading
class Scan(NamedTuple):
    """What a records file holds. ``entries[i]`` is ``(task tuple, result)``, in file order."""

    entries: list[tuple[tuple, Any]]
    end: int  # offset just after the last intact record
    corrupt: int = 0  # damaged stretches skipped between intact records (each ≈ one record)
    corrupt_bytes: int = 0
    torn: int = 0  # bytes of a partly written last record, dropped
    unreadable: int = 0  # intact records that do not decode into this cfgen's result type
    legacy: bool = False  # a pickled format-1 journal, read with the opt-in

    @property
    def damaged(self) -> bool:
        return bool(self.corrupt or self.torn or self.unreadable)


def _frame_at(buf: mmap.mmap, pos: int, size: int) -> tuple[str, int]:
    """``("ok", length)`` for a valid record at ``pos``; ``("torn", 0)`` for a valid frame or
    a frame's beginning cut off by the end of the file; ``("corrupt", 0)`` for a whole record
    whose payload fails its checksum; ``("bad", 0)`` for no valid frame."""
    left = size - pos
    if left < FRAME.size:
        head = buf[pos:pos + min(left, len(MAGIC))]
        return ("torn", 0) if MAGIC.startswith(head) else ("bad", 0)
    magic, length, crc, head_crc = FRAME.unpack_from(buf, pos)
    if magic != MAGIC or zlib.crc32(buf[pos:pos + _FRAME_HEAD.size]) != head_crc \
            or length > MAX_RECORD:
        return "bad", 0
    if length > left - FRAME.size:
        return "torn", 0
    start = pos + FRAME.size
    if zlib.crc32(buf[start:start + length]) != crc:
        return "corrupt", 0
    return "ok", length


def _scan(buf: mmap.mmap, size: int, cls: type) -> Scan:
    entries: list[tuple[tuple, Any]] = []
    pos = end = corrupt = corrupt_bytes = unreadable = 0
    bad_start: int | None = None  # start of the damaged stretch being skipped
    whole = False  # the stretch began with a whole record (frame intact, payload damaged)
    while pos < size:
        status, length = _frame_at(buf, pos, size)
        if status != "ok":
            if bad_start is None:
                bad_start, whole = pos, status == "corrupt"
            nxt = buf.find(MAGIC, pos + 1)
            if nxt < 0:
                break
            pos = nxt
            continue
        if bad_start is not None:
            corrupt, corrupt_bytes, bad_start = corrupt + 1, corrupt_bytes + pos - bad_start, None
        start = pos + FRAME.size
        try:
            entries.append(decode_payload(buf[start:start + length], cls))
        except RecordError:
            unreadable += 1
        pos = end = start + length
    # a damaged stretch that runs to the end of the file is the record being written when the
    # process (or the machine) died, unless it began with a whole record that fails its checksum
    torn = 0
    if bad_start is not None and whole:
        corrupt, corrupt_bytes = corrupt + 1, corrupt_bytes + size - bad_start
    elif bad_start is not None:
        torn = size - bad_start
    return Scan(entries, end, corrupt, corrupt_bytes, torn, unreadable)


def _legacy_result(cls: type, task: tuple, values: dict[str, Any], k: int | None) -> Any:
    """A result of today's shape from the flat fields of a format-1 TaskResult."""
    flat = dict(values)
    flat.setdefault("target", int(task[2]))  # Task(index, query, target, ...)
    cfs = flat.get("counterfactuals")
    flat.setdefault("k", k if k is not None else (len(cfs) if cfs is not None else 0))

    def build(c: type) -> Any:
        kw = {f.name: flat[f.name] for f in fields(c) if f.name in flat}
        for name, sub in _nested(c).items():
            if name not in flat:
                kw[name] = build(sub)
        return c(**kw)

    return build(cls)


def _scan_legacy(buf: mmap.mmap, size: int, cls: type, k: int | None) -> Scan:
    """The pickled records of a format-1 journal (only with the opt-in): bounded reads."""
    entries: list[tuple[tuple, Any]] = []
    pos = unreadable = 0
    while size - pos >= LEGACY_HEADER.size:
        magic, crc, length = LEGACY_HEADER.unpack_from(buf, pos)
        start = pos + LEGACY_HEADER.size
        if magic != LEGACY_MAGIC or length > size - start:
            break
        payload = buf[start:start + length]
        if zlib.crc32(payload) != crc:
            break
        try:
            task, values = pickle.loads(payload)  # noqa: S301 - the user opted in (TRUST_ENV)
            entries.append((tuple(task), _legacy_result(cls, tuple(task), values, k)))
        except Exception:  # noqa: BLE001 - an unreadable legacy record is rerun
            unreadable += 1
        pos = start + length
    return Scan(entries, pos, torn=size - pos, unreadable=unreadable, legacy=True)


def read_records(path: str | Path, *, trust_pickle: bool | None = None,
                 k: int | None = None) -> tuple[list[tuple[tuple, Any]], int]:
    """``(entries, end)`` of :func:`scan_records`: the intact records and where the last ends."""
    scan = scan_records(path, trust_pickle=trust_pickle, k=k)
    return scan.entries, scan.end


def scan_records(path: str | Path, *, trust_pickle: bool | None = None,
                 k: int | None = None) -> Scan:
    """Every intact record of ``path`` and what was damaged. A pickled (format-1) file
    raises :class:`UntrustedJournal` unless ``trust_pickle`` (default: the
    ``CFGEN_TRUST_PICKLED_JOURNAL`` opt-in); ``k`` fills a legacy result's missing ``k``."""
    path = Path(path)
    cls = result_type()
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        return Scan([], 0)
    with fh:
        size = os.fstat(fh.fileno()).st_size
        if size == 0:
            return Scan([], 0)
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            if buf[:len(LEGACY_MAGIC)] == LEGACY_MAGIC:
                if not (trust_pickled() if trust_pickle is None else trust_pickle):
                    raise UntrustedJournal(path)
                return _scan_legacy(buf, size, cls, k)
            return _scan(buf, size, cls)
