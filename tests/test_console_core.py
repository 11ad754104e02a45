"""The console core without sockets or loops: protocol, outbox, decimation, sessions and the hub."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest

from groundstation.catalog import Catalog
from groundstation.console.decimate import Accumulator, Latest, summarize
from groundstation.console.hub import Hub
from groundstation.console.outbox import Outbox
from groundstation.console.protocol import (
    MAX_MESSAGE_BYTES,
    MAX_RATE,
    MIN_RATE,
    PROTOCOL_VERSION,
    ProtocolError,
    SharedFrame,
    array_blob,
    decode_client_message,
    encode,
    encode_map,
    packb,
)
from groundstation.console.session import Principal
from groundstation.simulator.flight import vehicle_database
from telemetry_formats.decom import SampleBatch
from telemetry_formats.paramdb import Calibration, Fragment, FrameFormat, Parameter, ParameterDatabase

S = 1_000_000_000  # ns
T0 = 1_700_000_000 * S

ENGINEER = Principal("alice", "engineer", "propulsion")


# -- helpers ---------------------------------------------------------------------


def pack(msg) -> bytes:
    return msgpack.packb(msg, use_bin_type=True)


def pairs(data: bytes) -> list[tuple]:
    """A server message as its ordered (key, value) pairs."""
    return msgpack.unpackb(data, raw=False, object_pairs_hook=list)


def unpack(data: bytes) -> dict:
    return msgpack.unpackb(data, raw=False)


def split_seq(data: bytes) -> tuple[int, bytes]:
    """(seq, the bytes of the map's other entries): what a shared frame must have in common."""
    u = msgpack.Unpacker(raw=False)
    u.feed(data)
    u.read_map_header()
    assert u.unpack() == "seq", "seq must be the first key"
    seq = u.unpack()
    return seq, data[u.tell():]


def drain_outbox(ob: Outbox) -> list[bytes]:
    out = []
    while (b := ob.pop()) is not None:
        out.append(b)
    return out


def drain(session) -> list[bytes]:
    return drain_outbox(session.outbox)


def messages(session) -> list[dict]:
    """Everything queued for a session; a tick's bundle as its data messages (with the bundle's seq)."""
    out = []
    for b in drain(session):
        m = unpack(b)
        out += [{**f, "seq": m["seq"]} for f in m["frames"]] if m.get("type") == "bundle" else [m]
    return out


def batch(pid, t_ns, eu, limit=None) -> SampleBatch:
    pid = np.asarray(pid, np.int32)
    return SampleBatch(
        pid=pid,
        t_ns=np.asarray(t_ns, np.int64),
        raw=np.zeros(len(pid), np.uint32),
        eu=np.asarray(eu, np.float64),
        limit=np.zeros(len(pid), np.int8) if limit is None else np.asarray(limit, np.int8),
    )


def blob(m: dict, key: str, dtype: str) -> np.ndarray:
    return np.frombuffer(m[key], dtype)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog(vehicle_database(1_000_000), version=1)


def ids_of(cat: Catalog, *names: str) -> list[int]:
    return sorted(cat.by_name[n].id for n in names)


# -- protocol: client messages ---------------------------------------------------------


def test_valid_subscribe_is_normalized() -> None:
    msg = decode_client_message(pack({"type": "subscribe", "id": 9, "rate": 10, "names": ["ALT"], "globs": ["*_RATE"]}))
    assert msg == {"type": "subscribe", "id": 9, "names": ["ALT"], "globs": ["*_RATE"], "groups": [], "rate": 10}
    assert decode_client_message(pack({"type": "ping"})) == {"type": "ping", "id": None}
    assert decode_client_message(pack({"type": "snapshot", "id": 1})) == {"type": "snapshot", "id": 1, "sub": None}
    assert decode_client_message(pack({"type": "ack", "id": 2, "alarm": 5}))["alarm"] == 5
    assert decode_client_message(pack({"type": "unsubscribe", "id": 3, "sub": 0}))["sub"] == 0


@pytest.mark.parametrize(
    ("data", "code", "field"),
    [
        ("a text frame", "not_binary", None),
        (b"\x90" + b"\xc0" * MAX_MESSAGE_BYTES, "too_large", None),
        (b"\xc1", "bad_msgpack", None),  # 0xC1 is never used
        (b"\x82\xa4type", "bad_msgpack", None),  # truncated map
        (pack({"type": "ping"}) + b"\x00", "bad_msgpack", None),  # trailing bytes
        (pack({1: "ping"}), "bad_msgpack", None),  # non-string map key
        (pack([1, 2, 3]), "bad_message", None),
        (pack("subscribe"), "bad_message", None),
        (pack({"type": "launch"}), "unknown_type", None),
        (pack({"id": 1}), "unknown_type", None),
        (pack({"type": "subscribe", "names": ["ALT"]}), "missing_field", "rate"),
        (pack({"type": "subscribe", "names": ["ALT"], "rate": "10"}), "bad_field", "rate"),
        (pack({"type": "subscribe", "names": ["ALT"], "rate": True}), "bad_field", "rate"),
        (pack({"type": "subscribe", "names": "ALT", "rate": 10}), "bad_field", "names"),
        (pack({"type": "subscribe", "globs": [1], "rate": 10}), "bad_field", "globs"),
        (pack({"type": "subscribe", "groups": ["x"] * 257, "rate": 10}), "selection_too_large", "groups"),
        (pack({"type": "subscribe", "globs": ["x*"] * 33, "rate": 10}), "selection_too_large", "globs"),
        (pack({"type": "subscribe", "globs": ["x" * 257], "rate": 10}), "selection_too_large", "globs"),
        (pack({"type": "subscribe", "names": ["x"] * 10_001, "rate": 10}), "selection_too_large", "names"),
        (pack({"type": "subscribe", "names": [], "globs": [], "rate": 10}), "empty_selection", None),
        (pack({"type": "subscribe", "rate": 10}), "empty_selection", None),
        (pack({"type": "unsubscribe"}), "missing_field", "sub"),
        (pack({"type": "unsubscribe", "sub": 1.5}), "bad_field", "sub"),
        (pack({"type": "ack"}), "missing_field", "alarm"),
        (pack({"type": "ping", "id": "seven"}), "bad_field", "id"),
    ],
)
def test_every_error_code(data, code, field) -> None:
    with pytest.raises(ProtocolError) as info:
        decode_client_message(data)
    assert info.value.code == code
    assert str(info.value)
    if field is not None:
        assert info.value.extra["field"] == field


def test_too_large_is_judged_on_size_before_parsing() -> None:
    ok = pack({"type": "subscribe", "id": 1, "rate": 1, "names": ["x" * 100] * 600})
    assert len(ok) < MAX_MESSAGE_BYTES
    decode_client_message(ok)
    big = pack({"type": "ping", "pad": "x" * MAX_MESSAGE_BYTES})
    with pytest.raises(ProtocolError) as info:
        decode_client_message(big)
    assert info.value.code == "too_large"


@pytest.mark.parametrize(("rate", "ok"), [(MIN_RATE - 1, False), (MIN_RATE, True), (MAX_RATE, True), (MAX_RATE + 1, False)])
def test_rate_range_is_named_in_the_error(rate, ok) -> None:
    data = pack({"type": "subscribe", "id": 4, "rate": rate, "groups": ["status"]})
    if ok:
        assert decode_client_message(data)["rate"] == rate
        return
    with pytest.raises(ProtocolError) as info:
        decode_client_message(data)
    e = info.value
    assert (e.code, e.extra["field"], e.extra["allowed"]) == ("bad_field", "rate", [MIN_RATE, MAX_RATE])
    assert f"{MIN_RATE}..{MAX_RATE}" in str(e)


def test_negative_subscription_and_alarm_ids_are_bad_fields() -> None:
    for kind, key in (("unsubscribe", "sub"), ("ack", "alarm"), ("snapshot", "sub")):
        with pytest.raises(ProtocolError) as info:
            decode_client_message(pack({"type": kind, "id": 1, key: -1}))
        assert (info.value.code, info.value.extra["field"], info.value.extra["allowed"][0]) == ("bad_field", key, 0)


@pytest.mark.parametrize(
    "msg",
    [
        {"type": "launch", "id": 41},
        {"type": "subscribe", "id": 42, "names": ["ALT"]},
        {"type": "subscribe", "id": 43, "names": ["ALT"], "rate": 99},
        {"type": "subscribe", "id": 44, "rate": 1},
        {"type": "unsubscribe", "id": 45},
        {"type": "ack", "id": 46, "alarm": "x"},
    ],
)
def test_request_id_is_echoed_in_errors(msg) -> None:
    with pytest.raises(ProtocolError) as info:
        decode_client_message(pack(msg))
    assert info.value.request_id == msg["id"]


def test_errors_before_the_id_is_known_have_no_request_id() -> None:
    for data in ("text", b"\xc1", pack([1]), pack({"type": "ping", "id": "x"})):
        with pytest.raises(ProtocolError) as info:
            decode_client_message(data)
        assert info.value.request_id is None


# -- protocol: server messages ------------------------------------------------------------


@pytest.mark.parametrize("n_fields", [0, 1, 14, 15, 16, 17, 40])
def test_encode_puts_seq_first_for_any_map_size(n_fields) -> None:
    message = {f"k{i:02d}": i for i in range(n_fields)}
    data = encode(123456, message)
    got = pairs(data)
    assert got[0] == ("seq", 123456)
    assert dict(got[1:]) == message and len(got) == n_fields + 1
    # map16 once there are 16 entries with seq
    assert data[0] == (0xDE if n_fields + 1 >= 16 else 0x80 | (n_fields + 1))


@pytest.mark.parametrize("n_fields,n_frames", [(3, 0), (14, 15), (15, 16), (30, 70000)])
def test_shared_frame_gives_the_same_bytes_to_every_session(n_fields, n_frames) -> None:
    message = {"type": "data", "ids": array_blob(np.arange(5), "<u4"), **{f"f{i}": float(i) for i in range(n_fields - 2)}}
    frame = SharedFrame.of(message)
    assert len(frame) == len(frame.pairs)
    groups = [{"g": i} for i in range(n_frames)]
    head, tail = frame.bundle_parts([encode_map(g) for g in groups])
    outs = {seq: head + packb(seq) + tail for seq in (1, 2, 127, 128, 65536, 2**40)}
    tails = set()
    for seq, data in outs.items():
        assert data == encode(seq, {**message, "frames": groups}), "the parts must equal encoding the whole message"
        got_seq, rest = split_seq(data)
        assert got_seq == seq
        tails.add(rest)
        decoded = unpack(data)
        assert decoded.pop("seq") == seq and decoded == {**message, "frames": groups}
    assert tails == {tail}


def test_array_blob_is_little_endian() -> None:
    assert array_blob(np.array([1, 256]), "<u4") == b"\x01\x00\x00\x00\x00\x01\x00\x00"
    assert array_blob(np.array([1.5]), "<f8") == np.array([1.5], "<f8").tobytes()
    m = unpack(encode(1, {"b": array_blob(np.array([-1], np.int64), "<i8")}))
    assert isinstance(m["b"], bytes) and np.frombuffer(m["b"], "<i8")[0] == -1


# -- outbox ------------------------------------------------------------------------------------


def test_on_ready_only_when_the_queue_goes_from_empty_to_non_empty() -> None:
    ob = Outbox()
    calls = []
    ob.on_ready = lambda: calls.append(len(ob))
    ob.push_event(b"a")
    ob.push_data("k", b"b")
    ob.push_event(b"c")
    assert calls == [1]  # after the push: the writer can take the message at once
    assert ob.pop() == b"a"
    ob.push_event(b"d")
    assert calls == [1]
    assert [ob.pop() for _ in range(3)] == [b"b", b"c", b"d"]
    assert ob.pop() is None and len(ob) == 0 and ob.bytes == 0
    ob.push_data("k", b"e")
    assert calls == [1, 1]


def test_events_are_never_dropped() -> None:
    ob = Outbox(max_frames=4, max_bytes=1 << 20, max_behind_s=10)
    events = [f"event {i}".encode() for i in range(50)]
    for i, e in enumerate(events):
        ob.push_event(e, now_ns=i)
        ob.push_data(("tier", i % 2), b"frame %d" % i, now_ns=i)
    got = drain_outbox(ob)
    assert [g for g in got if g.startswith(b"event")] == events
    assert ob.close_reason is None


def test_telemetry_conflates_to_the_newest_frame_per_key_when_over_the_bound() -> None:
    ob = Outbox(max_frames=6, max_bytes=1 << 20)
    for i in range(6):  # at the bound: nothing dropped yet
        ob.push_data("A" if i % 2 else "B", b"%s%d" % (b"A" if i % 2 else b"B", i))
    assert len(ob) == 6 and ob.dropped == 0
    ob.push_event(b"E1")
    # over the bound: only the newest A and B are left, the event keeps its place after them
    assert drain_outbox(ob) == [b"B4", b"A5", b"E1"]
    assert ob.dropped == 4 and ob.bytes == 0 and ob.close_reason is None


def test_conflation_keeps_event_order_and_byte_count() -> None:
    ob = Outbox(max_frames=5, max_bytes=1 << 20)
    seq = [("d", "A", b"a1"), ("e", None, b"E1"), ("d", "A", b"a2"), ("d", "B", b"b1"), ("e", None, b"E2"),
           ("d", "A", b"a3")]
    for kind, key, data in seq:
        ob.push_event(data) if kind == "e" else ob.push_data(key, data)
    assert ob.bytes == sum(len(d) for _, _, d in [s for s in seq if s[2] not in (b"a1", b"a2")])
    assert drain_outbox(ob) == [b"E1", b"b1", b"E2", b"a3"]


def test_bytes_bound_conflates_too() -> None:
    ob = Outbox(max_frames=1000, max_bytes=100)
    for i in range(5):
        ob.push_data("k", bytes([i]) * 30)
    assert len(ob) <= 3 and ob.bytes <= 100
    assert drain_outbox(ob)[-1] == bytes([4]) * 30


def test_close_reason_after_max_behind_s_over_the_bound() -> None:
    ob = Outbox(max_frames=3, max_bytes=1 << 20, max_behind_s=2.0)
    for i in range(4):
        ob.push_event(b"e%d" % i, now_ns=1 * S)
    assert ob.behind_since_ns == 1 * S and ob.close_reason is None
    ob.push_data("k", b"d", now_ns=3 * S)  # exactly max_behind_s: not yet
    assert ob.close_reason is None
    ob.push_data("k", b"d", now_ns=3 * S + 1)
    assert ob.close_reason is not None and "behind" in ob.close_reason
    assert len([b for b in drain_outbox(ob) if b.startswith(b"e")]) == 4


def test_catching_up_resets_the_behind_clock() -> None:
    ob = Outbox(max_frames=3, max_bytes=1 << 20, max_behind_s=2.0)
    for _i in range(4):
        ob.push_event(b"e", now_ns=0)
    assert ob.behind_since_ns == 0
    ob.pop()
    assert ob.behind_since_ns == 0, "still behind until the queue drains"
    while ob.pop() is not None:
        pass
    assert ob.behind_since_ns is None
    for _i in range(4):
        ob.push_event(b"e", now_ns=5 * S)
    assert ob.behind_since_ns == 5 * S and ob.close_reason is None


def test_a_console_that_never_reads_is_conflated_then_closed() -> None:
    ob = Outbox(max_frames=8, max_bytes=1 << 20, max_behind_s=1.0)
    for i in range(1000):  # a console that never reads, 4 channels, 100 s
        ob.push_data(i % 4, b"x" * 100, now_ns=i * S // 10)
        assert len(ob) <= 9
    assert ob.dropped >= 990
    assert ob.close_reason == "behind for more than 1 s"


def test_a_slow_console_that_keeps_draining_is_not_closed() -> None:
    ob = Outbox(max_frames=8, max_bytes=1 << 20, max_behind_s=1.0)
    for i in range(1000):  # 10 frames per 0.1 s, but it drains everything every 0.5 s
        ob.push_data(i % 4, b"x" * 100, now_ns=i * S // 100)
        if i % 50 == 49:
            while ob.pop() is not None:
                pass
    assert ob.close_reason is None and ob.dropped > 0


def test_close_reason_past_hard_max_bytes() -> None:
    ob = Outbox(max_frames=1000, max_bytes=100, max_behind_s=3600, hard_max_bytes=1000)
    for _ in range(9):
        ob.push_event(b"x" * 100)
    assert ob.close_reason is None
    ob.push_event(b"x" * 101)
    assert ob.close_reason is not None and "events" in ob.close_reason
    assert len(ob) == 10, "events are kept even then"


# -- decimation ------------------------------------------------------------------------------------


def test_summarize_min_max_last_count_per_id() -> None:
    b = batch(
        pid=[7, 2, 7, 2, 7, 5],
        t_ns=[10, 11, 20, 21, 30, 31],
        eu=[1.0, -4.0, 9.0, 3.0, 2.0, 0.5],
    )
    s = summarize(b)
    assert s.ids.tolist() == [2, 5, 7]
    assert s.min.tolist() == [-4.0, 0.5, 1.0]
    assert s.max.tolist() == [3.0, 0.5, 9.0]
    assert s.last.tolist() == [3.0, 0.5, 2.0]
    assert s.last_t.tolist() == [21, 31, 30]
    assert s.count.tolist() == [2, 1, 3]


def test_worst_limit_is_the_most_severe_and_first() -> None:
    b = batch(
        pid=[1] * 6 + [2] * 4 + [3] * 2,
        t_ns=[100, 200, 300, 400, 500, 600, 100, 200, 300, 400, 100, 200],
        eu=np.zeros(12),
        limit=[0, 1, 2, -1, 2, 0, 0, -2, 2, 1, 0, 0],
    )
    s = summarize(b)
    assert s.worst_limit.tolist() == [2, -2, 0]
    assert s.worst_t.tolist()[:2] == [300, 200]  # the first sample of the worst severity
    assert s.last_limit.tolist() == [0, 1, 0]


def test_accumulator_take_returns_the_interval_and_resets() -> None:
    acc = Accumulator(4)
    acc.add(summarize(batch([1, 1, 3], [1, 2, 3], [5.0, 7.0, 1.0], [0, 1, 0])))
    acc.add(summarize(batch([1, 3], [4, 5], [6.0, -1.0], [0, -2])))
    got = acc.take()
    assert got.count.tolist() == [0, 3, 0, 2]
    assert (got.min[1], got.max[1], got.last[1], got.last_t[1]) == (5.0, 7.0, 6.0, 4)
    assert (got.min[3], got.max[3], got.last[3], got.last_t[3]) == (-1.0, 1.0, -1.0, 5)
    assert got.limit.tolist() == [0, 1, 0, -2]
    # reset, and the figures handed out are not touched by later samples
    assert acc.count.sum() == 0 and np.all(np.isinf(acc.min)) and np.all(acc.limit == 0)
    acc.add(summarize(batch([1], [9], [100.0])))
    assert got.max[1] == 7.0 and got.count[1] == 3
    assert acc.take().count.tolist() == [0, 1, 0, 0]


def test_a_one_sample_spike_survives_decimation() -> None:
    acc = Accumulator(1)
    rng = np.random.default_rng(1)
    t = 0
    for k in range(50):  # 50 batches of 20 samples = one 1 Hz interval at 1 kHz
        eu = rng.normal(100.0, 1.0, 20)
        if k == 31:
            eu[7] = 600.0
        acc.add(summarize(batch(np.zeros(20), t + np.arange(20), eu)))
        t += 20
    got = acc.take()
    assert got.count[0] == 1000 and got.max[0] == 600.0 and got.min[0] < 100.0 and got.last[0] != 600.0


def test_latest_keeps_the_newest_value_per_parameter() -> None:
    lat = Latest(3)
    lat.add(summarize(batch([0, 2, 0], [1, 2, 3], [1.0, 2.0, 3.0], [0, 1, 0])))
    lat.add(summarize(batch([2], [4], [5.0], [-2])))
    assert lat.seen.tolist() == [True, False, True]
    assert lat.value[[0, 2]].tolist() == [3.0, 5.0] and lat.t_ns[[0, 2]].tolist() == [3, 4]
    assert lat.limit.tolist() == [0, 0, -2]


# -- sessions and hub -------------------------------------------------------------------------------


def connect(hub: Hub, user="alice", now=T0, keep_hello=False, **outbox):
    s = hub.connect(Principal(user, "engineer"), now, Outbox(**outbox) if outbox else None)
    if not keep_hello:
        drain(s)
    return s


def request(session, msg: dict, now=T0) -> list[dict]:
    session.receive(pack(msg), now)
    return messages(session)


def subscribe(session, now=T0, **msg) -> dict:
    replies = request(session, {"type": "subscribe", "id": 1, **msg}, now)
    assert replies[0]["type"] == "subscribed", replies[0]
    return replies[0]


def test_hello_is_the_first_message(catalog) -> None:
    hub = Hub(catalog, now_ns=T0)
    s1 = hub.connect(ENGINEER, T0 + 5)
    s2 = hub.connect(Principal("bob", "viewer"), T0 + 6)
    raw = drain(s1)
    assert len(raw) == 1 and pairs(raw[0])[0] == ("seq", 1)
    h = unpack(raw[0])
    assert h["type"] == "hello" and h["protocol"] == PROTOCOL_VERSION
    assert (h["session"], h["user"], h["role"], h["server_ns"]) == (s1.id, "alice", "engineer", T0 + 5)
    assert h["rates"] == [MIN_RATE, MAX_RATE]
    assert h["catalog"]["version"] == 1 and h["catalog"]["groups"] == catalog.group_names
    params = h["catalog"]["params"]
    assert [p["id"] for p in params] == list(range(len(catalog)))
    alt = params[catalog.by_name["ALT"].id]
    assert (alt["name"], alt["units"], alt["group"]) == ("ALT", "ft", "air data")
    assert alt["limits"] == [None, None, 45000.0, 50000.0] and alt["rate"] == pytest.approx(1e6 / 1040)
    assert h["link"]["state"] == "WAITING" and h["alarms"] == [] and h["source"] == {"replay": False}
    assert messages(s2)[0]["session"] == s2.id != s1.id


@pytest.mark.parametrize(
    ("selection", "names", "groups"),
    [
        ({"names": ["ALT", "EGT"]}, ["ALT", "EGT"], ["air data", "propulsion"]),
        ({"globs": ["*_RATE"]}, ["PITCH_RATE", "ROLL_RATE", "YAW_RATE"], ["flight controls"]),
        ({"groups": ["navigation"]}, ["LAT", "LON", "HEADING"], ["navigation"]),
        ({"names": ["NZ"], "globs": ["N?"], "groups": ["hydraulics"]}, ["NZ", "N1", "N2", "HYD_PRESS"],
         ["flight controls", "hydraulics", "propulsion"]),
    ],
)
def test_subscribe_by_names_globs_and_groups(catalog, selection, names, groups) -> None:
    hub = Hub(catalog)
    s = connect(hub)
    drain(s)
    replies = request(s, {"type": "subscribe", "id": 77, "rate": 5, **selection})
    ok, snap = replies
    assert (ok["type"], ok["id"], ok["sub"], ok["rate"]) == ("subscribed", 77, 1, 5)
    assert ok["ids"] == ids_of(catalog, *names)
    assert ok["groups"] == groups
    assert snap["type"] == "snapshot" and snap["sub"] == 1
    assert blob(snap, "ids", "<u4").size == 0, "nothing seen yet"
    assert list(s.subs) == [1] and 5 in hub.tiers


def test_unknown_names_are_listed_in_the_error(catalog) -> None:
    hub = Hub(catalog)
    s = connect(hub)
    drain(s)
    (err,) = request(s, {"type": "subscribe", "id": 8, "rate": 1, "names": ["ALT", "NOPE"], "globs": ["ZZ*"],
                         "groups": ["propulsion", "nope"]})
    assert (err["type"], err["id"], err["code"]) == ("error", 8, "unknown_parameters")
    assert sorted(err["unknown"]) == sorted(["NOPE", "glob:ZZ*", "group:nope"])
    assert "NOPE" in err["message"]
    assert s.subs == {} and hub.tiers == {}
    # the connection stays usable and the next subscription gets id 1
    assert subscribe(s, rate=1, names=["ALT"])["sub"] == 1


def test_bad_messages_get_error_replies_with_the_request_id(catalog) -> None:
    hub = Hub(catalog)
    s = connect(hub)
    drain(s)
    s.receive("text")
    s.receive(pack({"type": "subscribe", "id": 12, "rate": 0, "names": ["ALT"]}))
    s.receive(b"\xc1")
    errs = messages(s)
    assert [(e["code"], e["id"]) for e in errs] == [("not_binary", None), ("bad_field", 12), ("bad_msgpack", None)]
    assert errs[1]["allowed"] == [MIN_RATE, MAX_RATE] and errs[1]["field"] == "rate"
    assert s.errors == 3
    assert request(s, {"type": "ping", "id": 13}, now=T0 + 9) == [{"seq": 5, "type": "pong", "id": 13, "server_ns": T0 + 9}]


def test_snapshot_after_subscribe_has_the_latest_values(catalog) -> None:
    hub = Hub(catalog)
    alt, ias, egt = ids_of(catalog, "ALT"), ids_of(catalog, "IAS"), ids_of(catalog, "EGT")
    hub.on_samples(batch(alt * 3 + egt, [T0, T0 + 1, T0 + 2, T0 + 3], [1000.0, 1001.0, 1002.0, 700.0],
                         [0, 0, 1, 0]), T0 + 10)
    s = connect(hub)
    drain(s)
    _, snap = request(s, {"type": "subscribe", "id": 2, "rate": 2, "names": ["ALT", "IAS", "EGT"]})
    assert blob(snap, "ids", "<u4").tolist() == sorted(alt + egt), "IAS has no value yet"
    order = np.argsort(alt + egt)
    assert blob(snap, "value", "<f8").tolist() == np.array([1002.0, 700.0])[order].tolist()
    assert blob(snap, "t", "<i8").tolist() == np.array([T0 + 2, T0 + 3])[order].tolist()
    assert blob(snap, "limit", "<i1").tolist() == np.array([1, 0])[order].tolist()
    # on request: one subscription, or everything
    (snap2,) = request(s, {"type": "snapshot", "id": 3, "sub": 1})
    assert (snap2["id"], snap2["sub"]) == (3, 1) and snap2["ids"] == snap["ids"]
    (snap3,) = request(s, {"type": "snapshot", "id": 4})
    assert snap3["sub"] is None and blob(snap3, "ids", "<u4").tolist() == sorted(alt + egt)
    assert ias[0] not in blob(snap3, "ids", "<u4")


def test_unsubscribe_and_unknown_subscription_errors(catalog) -> None:
    hub = Hub(catalog)
    s = connect(hub)
    drain(s)
    subscribe(s, rate=10, names=["ALT"])
    subscribe(s, rate=10, groups=["air data"])
    (err,) = request(s, {"type": "unsubscribe", "id": 5, "sub": 9})
    assert (err["type"], err["code"], err["id"], err["known"]) == ("error", "unknown_subscription", 5, [1, 2])
    (err,) = request(s, {"type": "snapshot", "id": 6, "sub": 9})
    assert err["code"] == "unknown_subscription"
    (ok,) = request(s, {"type": "unsubscribe", "id": 7, "sub": 1})
    assert ok == {"seq": ok["seq"], "type": "unsubscribed", "id": 7, "sub": 1}
    assert 10 in hub.tiers, "sub 2 still needs the air data channel"
    (ok,) = request(s, {"type": "unsubscribe", "id": 8, "sub": 2})
    assert hub.tiers == {} and s.subs == {}
    (err,) = request(s, {"type": "unsubscribe", "id": 9, "sub": 2})
    assert err["code"] == "unknown_subscription" and err["known"] == []


def test_sequence_numbers_have_no_gaps(catalog) -> None:
    hub = Hub(catalog)
    s = connect(hub, keep_hello=True)
    s.receive(pack({"type": "subscribe", "id": 1, "rate": 50, "groups": ["air data"]}))
    s.receive(b"junk")
    for k in range(5):
        hub.on_samples(batch(ids_of(catalog, "ALT"), [T0 + k], [1.0]), T0 + k)
        hub.tick(T0 + k * S // 50)
    sent = drain(s)
    assert [split_seq(b)[0] for b in sent] == list(range(1, len(sent) + 1))


def air_data_samples(cat: Catalog, t0: int, n: int = 10, base: float = 100.0) -> SampleBatch:
    ids = cat.groups["air data"]
    pid = np.tile(ids, n)
    t = np.repeat(t0 + np.arange(n) * 1000, len(ids))
    eu = base + np.repeat(np.arange(n, dtype=float), len(ids))
    return batch(pid, t, eu)


def test_tick_encodes_one_frame_per_rate_and_group_for_any_number_of_sessions(catalog) -> None:
    hub = Hub(catalog)
    sessions = [connect(hub, f"u{i}") for i in range(30)]
    for i, s in enumerate(sessions):  # the same channel reached three ways
        sel = [{"names": ["ALT"]}, {"globs": ["MA*"]}, {"groups": ["air data"]}][i % 3]
        subscribe(s, rate=10, **sel)
    subscribe(sessions[0], rate=10, names=["OAT"])  # a second sub on the same channel: still one copy
    # extra noise so the sessions' seqs differ
    for i, s in enumerate(sessions):
        for _ in range(i % 4):
            request(s, {"type": "ping"})
    hub.on_samples(air_data_samples(catalog, T0), T0 + 50)
    before = hub.stats.frames_encoded
    assert hub.tick(T0 + S) == 1
    assert hub.stats.frames_encoded - before == 1 and hub.stats.deliveries == 30 and hub.stats.ticks == 1
    tails, seqs = set(), set()
    for s in sessions:
        (data,) = drain(s)
        seq, tail = split_seq(data)
        assert seq == s.seq
        seqs.add(seq)
        tails.add(tail)
    assert len(tails) == 1 and len(seqs) == 4, "the same bytes for every console but its seq"
    bundle = unpack(data)
    assert (bundle["type"], bundle["rate"], bundle["t"], len(bundle["frames"])) == ("bundle", 10, T0 + S, 1)
    m = bundle["frames"][0]
    ids = catalog.groups["air data"]
    assert (m["type"], m["rate"], m["group"], m["t"], m["ingest_ns"]) == ("data", 10, "air data", T0 + S, T0 + 50)
    assert blob(m, "ids", "<u4").tolist() == ids.tolist()
    assert blob(m, "min", "<f8").tolist() == [100.0] * len(ids)
    assert blob(m, "max", "<f8").tolist() == [109.0] * len(ids)
    assert blob(m, "last", "<f8").tolist() == [109.0] * len(ids)
    assert blob(m, "count", "<u4").tolist() == [10] * len(ids)
    assert blob(m, "last_t", "<i8").tolist() == [T0 + 9000] * len(ids)
    assert blob(m, "limit", "<i1").tolist() == [0] * len(ids)


def test_one_frame_per_rate_and_group(catalog) -> None:
    hub = Hub(catalog)
    a, b, c = connect(hub, "a"), connect(hub, "b"), connect(hub, "c")
    subscribe(a, rate=10, names=["ALT", "EGT"])  # air data + propulsion at 10 Hz
    subscribe(b, rate=10, groups=["propulsion"])
    subscribe(c, rate=1, groups=["air data"])
    subscribe(c, rate=10, groups=["status"])  # no samples: no frame
    prop = catalog.groups["propulsion"]
    hub.on_samples(air_data_samples(catalog, T0), T0)
    hub.on_samples(batch(prop, [T0] * len(prop), np.arange(len(prop), dtype=float)), T0)
    assert hub.tick(T0 + S) == 3  # (10, air data), (10, propulsion), (1, air data)
    assert hub.stats.frames_encoded == 3 and hub.stats.deliveries == 3  # one bundle per console and tick
    got = {s.principal.user: sorted((m["rate"], m["group"]) for m in messages(s) if m["type"] == "data")
           for s in (a, b, c)}
    assert got == {"a": [(10, "air data"), (10, "propulsion")], "b": [(10, "propulsion")], "c": [(1, "air data")]}
    # a group frame carries the whole group, also the parameters not named
    assert hub.tick(T0 + 2 * S) == 0, "no new samples: no frames"


def test_tiers_tick_only_when_due_and_align_to_period_multiples(catalog) -> None:
    hub = Hub(catalog)
    s = connect(hub)
    subscribe(s, rate=10, groups=["air data"])
    subscribe(s, rate=1, groups=["air data"])
    drain(s)
    t = T0 + 1_234_567  # not on a period boundary

    def feed_and_tick(now):
        hub.on_samples(air_data_samples(catalog, now), now)
        hub.tick(now)
        return sorted(m["rate"] for m in messages(s) if m["type"] == "data")

    assert feed_and_tick(t) == [1, 10]  # a new tier is due at once
    assert hub.tiers[10].next_ns == T0 + 100_000_000 and hub.tiers[1].next_ns == T0 + S
    assert feed_and_tick(T0 + 50_000_000) == []
    assert feed_and_tick(T0 + 99_999_999) == []
    assert feed_and_tick(T0 + 100_000_000) == [10]
    assert feed_and_tick(T0 + 130_000_000) == []
    assert feed_and_tick(T0 + 451_000_000) == [10]  # late: one frame, not a burst, and back on the grid
    assert hub.tiers[10].next_ns == T0 + 500_000_000
    assert feed_and_tick(T0 + S) == [1, 10]


def test_slower_tier_keeps_the_spike_and_counts_every_sample(catalog) -> None:
    hub = Hub(catalog)
    s = connect(hub)
    subscribe(s, rate=1, names=["IAS"])
    subscribe(s, rate=50, names=["IAS"])
    hub.tick(T0)
    drain(s)
    ias = catalog.by_name["IAS"].id
    slow, fast = [], []
    for k in range(1, 51):  # one second in 20 ms steps, one spike
        now = T0 + k * 20_000_000
        eu = np.full(20, 300.0)
        if k == 17:
            eu[3] = 600.0
        hub.on_samples(batch(np.full(20, ias), now - 20_000_000 + np.arange(20) * 1_000_000, eu), now)
        hub.tick(now)
        for m in messages(s):
            if m["type"] == "data":
                j = int(np.flatnonzero(blob(m, "ids", "<u4") == ias)[0])
                (slow if m["rate"] == 1 else fast).append((blob(m, "max", "<f8")[j], blob(m, "count", "<u4")[j]))
    assert len(fast) == 50 and len(slow) == 1
    assert slow == [(600.0, 1000)]
    assert sum(c for _, c in fast) == 1000 and sum(mx == 600.0 for mx, _ in fast) == 1


def test_alarms_are_broadcast_and_acknowledged_once_for_all(catalog) -> None:
    hub = Hub(catalog)
    a, b = connect(hub, "a"), connect(hub, "b")
    drain(a), drain(b)
    egt = catalog.by_name["EGT"].id
    hub.on_samples(batch([egt] * 3, [T0, T0 + 1, T0 + 2], [700.0, 960.0, 900.0], [0, 2, 1]), T0 + 5)
    (ev_a,), (ev_b,) = messages(a), messages(b)
    assert ev_a == ev_b | {"seq": ev_a["seq"]}
    assert (ev_a["type"], ev_a["event"], ev_a["alarm"]["name"], ev_a["alarm"]["severity"]) == \
        ("alarm", "raised", "EGT", "CRITICAL")
    alarm_id = ev_a["alarm"]["id"]
    # a late console sees the active alarm in its hello
    c = connect(hub, "c", keep_hello=True)
    assert [x["id"] for x in messages(c)[0]["alarms"]] == [alarm_id]
    replies = request(a, {"type": "ack", "id": 21, "alarm": alarm_id}, now=T0 + 7)
    assert [m["type"] for m in replies] == ["alarm", "acked"]
    assert replies[0]["event"] == "acknowledged" and replies[0]["by"] == "a"
    assert replies[1] == {"seq": replies[1]["seq"], "type": "acked", "id": 21, "alarm": alarm_id}
    (ev,) = messages(b)
    assert ev["event"] == "acknowledged" and ev["alarm"]["acknowledged_by"] == "a"
    (err,) = request(b, {"type": "ack", "id": 22, "alarm": 999})
    assert (err["code"], err["id"]) == ("unknown_alarm", 22)


def test_link_status_goes_to_every_console(catalog) -> None:
    hub = Hub(catalog)
    a, b = connect(hub, "a"), connect(hub, "b")
    drain(a), drain(b)
    hub.set_link({"state": "OK", "since_ns": T0, "last_data_ns": T0, "reason": "data flowing"}, T0)
    for s in (a, b):
        (m,) = messages(s)
        assert (m["type"], m["state"], m["reason"]) == ("link", "OK", "data flowing")
    assert messages(connect(hub, "c", keep_hello=True))[0]["link"]["state"] == "OK"


def small_catalog(version: int) -> Catalog:
    frame = FrameFormat(name="F", words_per_minor=8)
    params = [
        Parameter("ALT", (Fragment(1),), group="air data", calibration=Calibration((0.0, 1.0))),
        Parameter("NEW_ONE", (Fragment(2),), group="new group"),
        Parameter("IAS", (Fragment(3),), group="air data"),
    ]
    return Catalog(ParameterDatabase(frame, params), version=version)


def test_set_catalog_re_resolves_subscriptions_and_broadcasts_the_catalog(catalog) -> None:
    hub = Hub(catalog)
    a, b = connect(hub, "a"), connect(hub, "b")
    subscribe(a, rate=10, names=["IAS"])
    subscribe(a, rate=5, names=["EGT"])
    subscribe(b, rate=10, globs=["*"])
    hub.on_samples(air_data_samples(catalog, T0), T0)
    drain(a), drain(b)
    new = small_catalog(version=2)
    hub.set_catalog(new, T0 + S)
    ma, mb = messages(a), messages(b)
    assert ma[0]["type"] == "catalog" and ma[0]["catalog"] == new.as_wire() == mb[0]["catalog"]
    assert ma[0]["catalog"]["version"] == 2
    resub = {m["sub"]: m for m in ma[1:]}
    assert all(m["type"] == "subscribed" and m["id"] is None for m in ma[1:])
    assert resub[1]["ids"] == [new.by_name["IAS"].id] and resub[1]["groups"] == ["air data"]
    assert resub[2]["ids"] == [] and resub[2]["groups"] == [], "EGT is gone"
    assert mb[1]["ids"] == [0, 1, 2] and mb[1]["groups"] == ["air data", "new group"]
    # state was reset: no stale snapshot, and data flows under the new ids
    assert not hub.latest.seen.any() and len(hub.latest.seen) == 3
    hub.on_samples(batch([0, 1, 2], [T0 + S] * 3, [1.0, 2.0, 3.0]), T0 + S)
    hub.tick(T0 + 2 * S)
    da = [m for m in messages(a) if m["type"] == "data"]
    db_ = sorted((m["group"], blob(m, "ids", "<u4").tolist()) for m in messages(b) if m["type"] == "data")
    assert [(m["rate"], m["group"]) for m in da] == [(10, "air data")]
    assert db_ == [("air data", [0, 2]), ("new group", [1])]
    # unsubscribing a subscription that resolved to nothing works
    (ok,) = request(a, {"type": "unsubscribe", "id": 3, "sub": 2})
    assert ok["type"] == "unsubscribed"


def test_slow_session_is_closed_through_on_close_and_others_continue(catalog) -> None:
    hub = Hub(catalog)
    closed = []

    def on_close(session, reason):
        closed.append((session.id, reason))
        hub.disconnect(session)

    hub.on_close = on_close
    slow = connect(hub, "slow", keep_hello=True, max_frames=4, max_behind_s=1.0)
    fast = connect(hub, "fast")
    for s in (slow, fast):  # queued for the slow one: hello, subscribed, snapshot
        s.receive(pack({"type": "subscribe", "id": 1, "rate": 10, "groups": ["air data"]}), T0)
    drain(fast)
    for k in range(3):  # link flapping: events the slow console never reads
        hub.set_link({"state": "OK" if k % 2 else "LOST", "since_ns": T0, "last_data_ns": T0, "reason": ""}, T0)
    assert slow.outbox.behind_since_ns == T0 and not closed
    got = 0
    for k in range(1, 21):
        now = T0 + k * 100_000_000
        hub.on_samples(air_data_samples(catalog, now), now)
        hub.tick(now)
        got += sum(m["type"] == "data" for m in messages(fast))
        if k < 10:
            assert not closed
    assert closed == [(slow.id, slow.outbox.close_reason)] and "behind" in closed[0][1]
    assert slow.id not in hub.sessions and fast.id in hub.sessions
    assert slow.subs == {} and all(slow not in m for t in hub.tiers.values() for m in t.channels.values())
    assert got == 20, "the fast console got every frame"
    # the slow console's events were all kept for the close (never dropped)
    kinds = [unpack(b)["type"] for b in drain(slow)]
    assert kinds.count("link") == 3 and kinds[:3] == ["hello", "subscribed", "snapshot"]


def test_disconnect_removes_the_session_from_every_channel(catalog) -> None:
    hub = Hub(catalog)
    a, b = connect(hub, "a"), connect(hub, "b")
    subscribe(a, rate=10, groups=["air data", "propulsion"])
    subscribe(b, rate=10, groups=["air data"])
    hub.disconnect(a)
    assert set(hub.tiers[10].channels) == {catalog.group_names.index("air data")}
    hub.disconnect(b)
    assert hub.tiers == {} and hub.sessions == {}


def test_on_close_is_called_once_per_session_even_if_the_shell_closes_later(catalog) -> None:
    hub = Hub(catalog)
    calls = []
    hub.on_close = lambda s, reason: calls.append(s.id)  # the shell closes the socket asynchronously
    slow = connect(hub, "slow", max_frames=2, max_behind_s=0.5)
    subscribe(slow, rate=10, groups=["air data"])
    for _ in range(3):
        hub.set_link({"state": "OK", "since_ns": T0, "last_data_ns": T0, "reason": ""}, T0)
    for k in range(1, 21):
        now = T0 + k * 100_000_000
        hub.on_samples(air_data_samples(catalog, now), now)
        hub.tick(now)
        hub.set_link({"state": "OK", "since_ns": T0, "last_data_ns": now, "reason": ""}, now)
    assert calls == [slow.id] and slow.outbox.close_reason == "behind for more than 0.5 s"
    hub.disconnect(slow)
    assert slow.id not in hub.sessions
