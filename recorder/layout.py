"""The HDF5 layout of a recording, as data: groups, datasets, dtypes and attributes.

One file per recording segment. A segment has one fixed layout, decided from the
configuration (the parameter database) in force when it starts: SWMR readers only
see objects that existed when the writer switched SWMR on, so every group,
dataset, attribute and dimension scale below is created first and only the
first axis of the growing datasets changes afterwards. A new configuration (a
catalog version change) therefore starts a new segment.

::

    /                         attrs: format, format_version, session, segment, created_ns,
                                     config_version, config_source, channel_id, time_units
    /catalog/<column>         one row per parameter: name, id, rate_group, column, units,
                              group, description, rate_hz (fixed, not appended)
    /config/database          the parameter database as JSON text (uint8), fixed
    /rates/rate_NN/           parameters sampled together (same samples per minor frame,
                              same frame filter, same relative slot times)
        time   (T,)   int64   dimension scale, attrs units="nanoseconds since 1970-01-01"
        param  (P,)   string  dimension scale: the parameter names (the column axis)
        units  (P,)   string  each parameter's units (a coordinate of values: one string per parameter)
        values (T, P) float32|float64 engineering units (``values_dtype``); attrs aligned
                              with the param axis
        raw    (T, P) uint8|16|32|64  the raw bits, at the width of the group's widest word
        limit  (T, P) int8    -2 critical low .. 0 ok .. 2 critical high
    /packets/data   (B,)   uint8   every Chapter 10 packet, back to back, as received
    /packets/index  (N, 6) int64   offset, length, channel, data_type, rtc, arrival_ns
    /packets/status (N,)   uint8   0 ok, 1 data checksum error, 2 truncated, 3 header error
                                   (absent in files written before it existed: read as all 0)
    /events/time, /events/end, /events/text     JSON lines (alarms, link, configuration,
    /commands/time, /commands/end, /commands/text   recorder state; command history)

Sample times: ``time[i] + time_offset_ns[j]`` is the exact decoded time of
``values[i, j]`` (the offset is the position of the parameter's word in the minor
frame relative to the group's first parameter; 0 for that one).

Also here (pure): the session index document that lists the segment files.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from dataclasses import dataclass, field

import numpy as np

from telemetry_formats.ch10.packet import STATUS_NAMES
from telemetry_formats.paramdb.active import ActiveDatabase

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "TIME_UNITS",
    "PACKET_INDEX_COLUMNS",
    "LIMIT_COLUMNS",
    "DatasetSpec",
    "RateGroup",
    "SegmentLayout",
    "float32_holds",
    "raw_dtype_for",
    "segment_file_name",
    "index_file_name",
    "new_index",
]

FORMAT = "groundstation-recording"
FORMAT_VERSION = 1
TIME_UNITS = "nanoseconds since 1970-01-01"
PACKET_INDEX_COLUMNS = ("offset", "length", "channel", "data_type", "rtc", "arrival_ns")
LIMIT_COLUMNS = ("critical_low", "warning_low", "warning_high", "critical_high")
STR = "str"  # marker dtype for variable-length UTF-8 strings (fixed datasets only, never appended)

# Chunk sizes: whole chunks of a few hundred KiB keep one append of a 0.5-1 s block to a
# few chunk writes, and a reader's partial chunk at the end small.
CHUNK_BYTES = 128 << 10
PACKET_CHUNK_BYTES = 1 << 20
TEXT_CHUNK_BYTES = 64 << 10


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset: ``grows`` ones are appended along axis 0 (shape (0, *tail) at creation)."""

    path: str
    dtype: object  # numpy dtype or STR
    tail: tuple[int, ...] = ()
    chunk_rows: int = 0
    attrs: dict = field(default_factory=dict)
    scale: str | None = None  # make it a dimension scale with this name
    dims: tuple[str | None, ...] = ()  # paths of the scales to attach, per axis
    data: object = None  # fixed content (``grows`` False)

    @property
    def grows(self) -> bool:
        return self.data is None


def _chunk_rows(row_bytes: int, target: int = CHUNK_BYTES) -> int:
    return int(max(1, min(1 << 20, target // max(row_bytes, 1))))


@dataclass(frozen=True)
class RateGroup:
    """Parameters recorded as one 2-D ``values(time, param)`` dataset."""

    name: str
    pids: np.ndarray  # (P,) parameter ids = catalog ids, column order
    names: tuple[str, ...]
    time_offset_ns: np.ndarray  # (P,) int64, relative to column 0
    samples_per_minor: float
    frame_position: int  # 0 = every minor frame
    frame_interval: int
    rate_hz: float | None
    raw_dtype: np.dtype
    values_dtype: np.dtype = np.dtype(np.float64)

    @property
    def path(self) -> str:
        return f"rates/{self.name}"


def raw_dtype_for(bits: int) -> np.dtype:
    """The narrowest unsigned type that holds ``bits`` raw bits."""
    return np.dtype(next(t for t in (np.uint8, np.uint16, np.uint32, np.uint64) if np.dtype(t).itemsize * 8 >= bits))


F32_RAW_BITS = 16  # integer words up to this wide are checked for float32 values (every raw value)


def float32_holds(p, frame) -> bool:
    """Whether float32 keeps ``p``'s engineering values: a float word of at most 32 bits with
    no calibration, or an integer word of at most ``F32_RAW_BITS`` bits whose calibrated value
    float32 rounds by less than a quarter of one raw count's step, over every raw value (in
    closed form for linear calibrations: at most max|EU| * 2**-24 against the slope)."""
    return _float32_holds(p.calibration, p.encoding, p.bit_width(frame))


@functools.lru_cache(maxsize=4096)
def _float32_holds(cal, encoding: str, bits: int) -> bool:
    if encoding == "float":
        return bits <= 32 and cal.is_identity
    if bits > F32_RAW_BITS:
        return False
    low = -(1 << (bits - 1)) if encoding == "signed" else 0
    if not cal.pairs and len(cal.polynomial) <= 2:  # linear: in closed form (float32 rounds by <= |x| 2^-24)
        c0, c1 = ((tuple(cal.polynomial) or (0.0, 1.0)) + (0.0,))[:2]
        if c1 == 0:
            return float(np.float32(c0)) == c0
        worst = max(abs(c0 + c1 * low), abs(c0 + c1 * (low + (1 << bits) - 1)))
        return worst < 3e38 and worst * 2.0**-24 <= abs(c1) / 4
    eu = cal.apply(np.arange(low, low + (1 << bits), dtype=np.float64))  # every raw value, in order
    if not np.isfinite(eu).all() or np.abs(eu).max() >= 3e38:
        return False
    err = np.abs(eu.astype(np.float32) - eu).max()
    steps = np.abs(np.diff(eu))
    steps = steps[steps > 0]
    return bool(err == 0 or (len(steps) and err <= steps.min() / 4))


def _calibration_json(cal) -> str:
    if cal.pairs:
        return json.dumps({"pairs": [list(p) for p in cal.pairs]})
    if cal.polynomial:
        return json.dumps({"polynomial": list(cal.polynomial)})
    return json.dumps({"polynomial": [0.0, 1.0]})


def _word_position(p, frame) -> str:
    words = "+".join(str(f.word) for f in p.fragments)
    masks = [f.mask for f in p.fragments]
    text = f"word {words}"
    if any(m is not None for m in masks):
        text += " mask " + "+".join("full" if m is None else f"0x{m:X}" for m in masks)
    if p.word_interval > 0:
        text += f" every {p.word_interval} words"
    if p.frame_position is not None and frame.minor_frames > 1:
        interval = p.frame_interval or frame.minor_frames
        text += f" frame {p.frame_position} every {interval}"
    return text


def _slot_offsets_ns(p, frame) -> list[int]:
    """Sample times of ``p`` within its minor frame, as the decommutator computes them."""
    bit_off = frame.bit_offsets()
    ns_bit = frame.ns_per_bit()
    return [round(int(bit_off[pos[0]]) * ns_bit) for pos in p.positions(frame)]


def _group_key(p, frame) -> tuple:
    z = max(frame.minor_frames, 1)
    if p.frame_position is None or z == 1:
        fp, fi = 0, 1
    else:
        fp, fi = p.frame_position, p.frame_interval or z
    offs = _slot_offsets_ns(p, frame)
    return (fp, fi, tuple(o - offs[0] for o in offs))


def _jsonable(obj):
    if dataclasses.is_dataclass(obj):
        return {f.name: _jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


@dataclass(frozen=True)
class SegmentLayout:
    """The fixed layout of one segment file, from a configuration (or none: packets only)."""

    config_version: int
    config_source: str
    channel_id: int
    groups: tuple[RateGroup, ...]
    n_params: int  # parameter ids are 0 .. n_params-1
    gid_of_pid: np.ndarray  # (n_params,) int32 rate group index of each parameter
    col_of_pid: np.ndarray  # (n_params,) int32 column within its group
    slot_of_pid: np.ndarray  # (n_params,) int32 position in group order (groups contiguous)
    group_start: np.ndarray  # (G+1,) int64 first slot of each group
    catalog: dict  # column name -> list, one entry per parameter (in id order)
    per_param_attrs: tuple[dict, ...]  # per group: attrs of the values dataset
    database_json: str = ""

    @classmethod
    def empty(cls) -> "SegmentLayout":
        """No configuration yet: raw packets and events only."""
        z = np.zeros(0, np.int32)
        return cls(0, "", -1, (), 0, z, z, z, np.zeros(1, np.int64), {}, (), "")

    @classmethod
    def from_configuration(cls, config) -> "SegmentLayout":
        """From an ``Ingest`` ``Configuration`` (``.db``, ``.version``, ``.source``, ``.channel_id``)."""
        if config is None:
            return cls.empty()
        return cls.from_database(config.db, version=config.version, source=config.source,
                                 channel_id=config.channel_id)

    @classmethod
    def from_database(cls, db, *, version: int = 0, source: str = "", channel_id: int = -1) -> "SegmentLayout":
        """From a ``ParameterDatabase`` (one PCM link) or an ``ActiveDatabase`` (every source): a rate
        group holds parameters of one source sampled together (a PCM link's slots with the same
        timing; the parameters of one 1553 message; of one ARINC-429 label)."""
        active = db if isinstance(db, ActiveDatabase) else ActiveDatabase.of(db)
        params = list(active.parameters)
        frames = active.frames
        keys: dict[tuple, list[int]] = {}
        for i, p in enumerate(params):
            keys.setdefault((active.time_keys[i], _group_key(p, frames[i])), []).append(i)

        def rate_of(members: list[int]) -> float:
            r = params[members[0]].nominal_rate(frames[members[0]])
            return r if r is not None else params[members[0]].samples_per_minor(frames[members[0]])

        order = sorted(keys.items(), key=lambda kv: (-rate_of(kv[1]), kv[1][0]))
        groups = []
        n = len(params)
        gid = np.full(n, -1, np.int32)
        col = np.full(n, -1, np.int32)
        slot = np.full(n, -1, np.int32)
        starts = [0]
        attrs_per_group = []
        rate_group_name = [""] * n
        for g, ((_, (fp, fi, _)), members) in enumerate(order):
            name = f"rate_{g:02d}"
            frame = frames[members[0]]
            offs = np.array([_slot_offsets_ns(params[i], frame)[0] for i in members], np.int64)
            bits = max(params[i].bit_width(frame) for i in members)
            f32 = all(float32_holds(params[i], frame) for i in members)
            first = params[members[0]]
            groups.append(RateGroup(
                name=name, pids=np.array(members, np.int32), names=tuple(params[i].name for i in members),
                time_offset_ns=offs - offs[0], samples_per_minor=first.samples_per_minor(frame),
                frame_position=fp, frame_interval=fi, rate_hz=first.nominal_rate(frame),
                raw_dtype=raw_dtype_for(bits), values_dtype=np.dtype(np.float32 if f32 else np.float64)))
            for c, i in enumerate(members):
                gid[i], col[i], slot[i] = g, c, starts[-1] + c
                rate_group_name[i] = name
            starts.append(starts[-1] + len(members))
            ps = [params[i] for i in members]
            attrs_per_group.append({
                "units": [p.units for p in ps],
                "description": [p.description for p in ps],
                "group": [p.group for p in ps],
                "encoding": [p.encoding for p in ps],
                "calibration": [_calibration_json(p.calibration) for p in ps],
                "limits": np.stack([p.limits.as_array() for p in ps]),
                "limits_columns": list(LIMIT_COLUMNS),
                "word_position": [active.location(i) or _word_position(params[i], frame) for i in members],
                "word": np.array([p.fragments[0].word for p in ps], np.int32),
                "id": np.array(members, np.int32),
                "time_offset_ns": offs - offs[0],
                "source": [active.kinds[i] for i in members],
                "channel": np.array([active.channels[i] for i in members], np.int32),
            })
        catalog = {
            "name": [p.name for p in params],
            "id": np.arange(n, dtype=np.int32),
            "rate_group": rate_group_name,
            "column": col.copy(),
            "units": [p.units for p in params],
            "group": [p.group for p in params],
            "description": [p.description for p in params],
            "rate_hz": np.array([np.nan if p.nominal_rate(f) is None else p.nominal_rate(f)
                                 for p, f in zip(params, frames)], np.float64),
            "source": list(active.kinds),
            "channel": np.array(active.channels, np.int32),
        }
        return cls(
            config_version=int(version), config_source=str(source), channel_id=int(channel_id),
            groups=tuple(groups), n_params=n, gid_of_pid=gid, col_of_pid=col, slot_of_pid=slot,
            group_start=np.array(starts, np.int64), catalog=catalog, per_param_attrs=tuple(attrs_per_group),
            database_json=json.dumps(_jsonable(db), default=str),
        )

    # -- the layout as a list of datasets -----------------------------------------------
    def root_attrs(self, *, session: str, segment: int, created_ns: int, previous: str = "") -> dict:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "session": session,
            "segment": int(segment),
            "created_ns": int(created_ns),
            "previous_segment": previous,
            "config_version": self.config_version,
            "config_source": self.config_source,
            "channel_id": self.channel_id,
            "parameters": self.n_params,
            "time_units": TIME_UNITS,
        }

    def group_attrs(self) -> dict[str, dict]:
        out = {
            "catalog": {"description": "one row per parameter: where it is recorded"},
            "config": {"description": "the configuration this segment was recorded with"},
            "rates": {"description": "decoded parameters grouped by sample rate: values(time, param)"},
            "packets": {"description": "every Chapter 10 packet as received; index columns: "
                        + ", ".join(PACKET_INDEX_COLUMNS)},
            "events": {"description": "JSON lines: alarms, link, configuration and recorder events"},
            "commands": {"description": "JSON lines: command history records"},
        }
        for g in self.groups:
            out[g.path] = {
                "rate_hz": np.nan if g.rate_hz is None else float(g.rate_hz),
                "samples_per_minor_frame": float(g.samples_per_minor),
                "frame_position": int(g.frame_position),
                "frame_interval": int(g.frame_interval),
                "parameters": len(g.names),
            }
        return out

    def datasets(self) -> list[DatasetSpec]:
        specs: list[DatasetSpec] = []
        time_attrs = {"units": TIME_UNITS, "calendar": "proleptic_gregorian", "standard_name": "time",
                      "long_name": "sample time (UTC)"}
        for g, attrs in zip(self.groups, self.per_param_attrs):
            p = len(g.names)
            t, c = f"{g.path}/time", f"{g.path}/param"
            specs.append(DatasetSpec(t, np.dtype(np.int64), (), _chunk_rows(8), dict(time_attrs), scale="time"))
            specs.append(DatasetSpec(c, STR, (p,), 0, {"long_name": "parameter name"}, scale="param",
                                     data=list(g.names)))
            # each parameter's units as a string coordinate on the param axis: xarray's
            # ds["values"].sel(param="ALT").units is "ft" (the values' "units" attribute is the list)
            specs.append(DatasetSpec(f"{g.path}/units", STR, (p,), 0, {"long_name": "units of each parameter"},
                                     dims=(c,), data=list(attrs["units"])))
            specs.append(DatasetSpec(f"{g.path}/values", g.values_dtype, (p,), _chunk_rows(g.values_dtype.itemsize * p),
                                     {**attrs, "long_name": "engineering value", "coordinates": "units"},
                                     dims=(t, c)))
            specs.append(DatasetSpec(f"{g.path}/raw", g.raw_dtype, (p,), _chunk_rows(g.raw_dtype.itemsize * p),
                                     {"long_name": "raw bits as unsigned integer"}, dims=(t, c)))
            specs.append(DatasetSpec(f"{g.path}/limit", np.dtype(np.int8), (p,), _chunk_rows(p),
                                     {"long_name": "limit state", "flag_values": np.arange(-2, 3, dtype=np.int8),
                                      "flag_meanings": "critical_low warning_low ok warning_high critical_high"},
                                     dims=(t, c)))
        for name, values in self.catalog.items():
            data = values if isinstance(values, list) else np.asarray(values)
            specs.append(DatasetSpec(f"catalog/{name}", STR if isinstance(values, list) else data.dtype,
                                     (len(values),), 0, {}, data=data))
        specs.append(DatasetSpec("config/database", np.dtype(np.uint8), (len(self.database_json.encode()),), 0,
                                 {"encoding": "utf-8 JSON"},
                                 data=np.frombuffer(self.database_json.encode(), np.uint8)))
        specs.append(DatasetSpec("packets/data", np.dtype(np.uint8), (), PACKET_CHUNK_BYTES,
                                 {"description": "Chapter 10 packets back to back (a .c10 byte stream)"}))
        specs.append(DatasetSpec("packets/status", np.dtype(np.uint8), (), _chunk_rows(1, 16 << 10),
                                 {"long_name": "what the packet was when received",
                                  "flag_values": np.array(sorted(STATUS_NAMES), np.uint8),
                                  "flag_meanings": " ".join(STATUS_NAMES[k].replace(" ", "_")
                                                            for k in sorted(STATUS_NAMES))}))
        specs.append(DatasetSpec("packets/index", np.dtype(np.int64), (len(PACKET_INDEX_COLUMNS),),
                                 _chunk_rows(8 * len(PACKET_INDEX_COLUMNS), 64 << 10),
                                 {"columns": list(PACKET_INDEX_COLUMNS),
                                  "arrival_ns_units": TIME_UNITS, "rtc_units": "100 ns (10 MHz counter)"}))
        for grp in ("events", "commands"):
            specs.append(DatasetSpec(f"{grp}/time", np.dtype(np.int64), (), _chunk_rows(8, 16 << 10),
                                     dict(time_attrs), scale="time"))
            specs.append(DatasetSpec(f"{grp}/end", np.dtype(np.int64), (), _chunk_rows(8, 16 << 10),
                                     {"description": "end offset in text of each line (exclusive)"},
                                     dims=(f"{grp}/time",)))
            specs.append(DatasetSpec(f"{grp}/text", np.dtype(np.uint8), (), TEXT_CHUNK_BYTES,
                                     {"description": "UTF-8 JSON lines, one object per line",
                                      "encoding": "utf-8"}))
        return specs


def segment_file_name(session: str, segment: int) -> str:
    return f"{session}_{segment:03d}.h5"


def index_file_name(session: str) -> str:
    return f"{session}.index.json"


def new_index(session: str, created_ns: int) -> dict:
    """The session index document (JSON beside the segment files)."""
    return {"format": FORMAT + "-index", "format_version": FORMAT_VERSION, "session": session,
            "created_ns": int(created_ns), "state": "recording", "segments": []}
