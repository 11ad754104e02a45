"""Commanding core (sans-I/O): definitions, authority, history, and the command service with an injected clock.

The uplink codec is injected: a recording fake here, the real one in the last test when it exists.
"""

from __future__ import annotations

import json

import pytest

from groundstation.auth import Principal, Role
from groundstation.commanding import (
    VEHICLE_COMMANDS,
    ArgSpec,
    Authority,
    AuthorityRefused,
    CommandDef,
    CommandRecord,
    CommandRejected,
    CommandService,
    EffectCheck,
    History,
    State,
    check_args,
    definitions_as_wire,
    validate,
    vehicle_commands,
)

S = 1_000_000_000  # ns per second
T0 = 1_000 * S


def who(user: str, role: str) -> Principal:
    return Principal(user=user, role=Role.parse(role), token_id=f"jti-{user}", expires_at=1e12)


ALICE, BOB = who("alice", "director"), who("bob", "director")
ROOT, VIEWER, ENGINEER = who("root", "admin"), who("vic", "viewer"), who("eve", "engineer")
DEFS = vehicle_commands()
QUIET = {"CMD_COUNT": 7, "CMD_LAST_OPCODE": 0, "CMD_RESULT": 0, "BITRATE_KBPS": 1000, "TEST_POINT": 0,
         "SYSTEM": 0, "FAULT": 0, "FC_SPF": 1, "VIB_SPF": 1}


class FakeEncoder:
    """Records every call; the packet says what was encoded."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple] = []
        self.fail = fail

    def __call__(self, sequence, opcode, args, armed) -> bytes:
        self.calls.append((sequence, opcode, list(args), armed))
        if self.fail:
            raise ValueError("opcode too large")
        return f"UP|{sequence}|{opcode}|{args}|{armed}".encode()


@pytest.fixture
def enc() -> FakeEncoder:
    return FakeEncoder()


@pytest.fixture
def svc(enc) -> CommandService:
    """Alice holds authority; the vehicle's status words have been seen."""
    s = CommandService(VEHICLE_COMMANDS, enc)
    s.authority.take(ALICE, T0)
    s.observe(QUIET, T0)
    return s


def record_of(events) -> dict:
    """The record of the last command event."""
    return [e for e in events if e["type"] == "command"][-1]["record"]


def states(events) -> list[str]:
    return [e["record"]["state"] for e in events if e["type"] == "command"]


def ack(svc, opcode, *, count=8, result=1, now, **more):
    return svc.observe({"CMD_COUNT": count, "CMD_LAST_OPCODE": opcode, "CMD_RESULT": result, **more}, now)


def send_next(svc, now):
    """Release and send the next command; (record, packet, events)."""
    out = svc.next_to_send(now)
    assert out is not None and out.packet is not None
    return out.record, out.packet, out.events + svc.sent(out.record.id, now)


# -- definitions --------------------------------------------------------------------------------------------------

def test_vehicle_commands_are_the_agreed_set():
    got = {d.name: (d.opcode, d.hazardous, [a.name for a in d.args]) for d in VEHICLE_COMMANDS}
    assert got == {
        "SET_BITRATE": (0x01, False, ["bitrate"]),
        "SET_GROUP_RATE": (0x02, False, ["group", "samples_per_frame"]),
        "SELECT_SYSTEM": (0x03, True, ["system"]),
        "MARK_TEST_POINT": (0x04, False, ["test_point"]),
        "INJECT_FAULT": (0x05, True, ["fault"]),
        "SET_BUS_RATE": (0x06, False, ["message", "period"]),
    }
    bitrate = DEFS["SET_BITRATE"].args[0]
    assert (bitrate.kind, bitrate.min, bitrate.max, bitrate.units) == ("u32", 10_000, 20_000_000, "b/s")
    assert DEFS["INJECT_FAULT"].args[0].choices == {"none": 0, "egt_overtemp": 1, "hydraulic_loss": 2, "vibration": 3}


@pytest.mark.parametrize("name, raw, wire", [
    ("SET_BITRATE", {"bitrate": 1_500_000}, [("u32", 1_500_000)]),
    ("SET_BITRATE", {"bitrate": 10_000}, [("u32", 10_000)]),
    ("SET_BITRATE", {"bitrate": 2e7}, [("u32", 20_000_000)]),  # a whole float, as JSON may carry it
    ("SET_GROUP_RATE", {"samples_per_frame": "4", "group": "structures"}, [("u32", 1), ("u32", 4)]),
    ("SET_GROUP_RATE", {"group": 0, "samples_per_frame": 2}, [("u32", 0), ("u32", 2)]),  # codes from a script
    ("SELECT_SYSTEM", {"system": "backup"}, [("u32", 1)]),
    ("MARK_TEST_POINT", {"test_point": 65535}, [("u32", 65535)]),
    ("INJECT_FAULT", {"fault": "hydraulic_loss"}, [("u32", 2)]),
])
def test_validate_gives_wire_arguments_in_definition_order(name, raw, wire):
    assert validate(DEFS[name], raw) == wire
    assert all(type(v) is int for _, v in wire)


@pytest.mark.parametrize("name, raw, code, argument, words", [
    ("SET_BITRATE", {"bitrate": 5}, "out_of_range", "bitrate", ["'bitrate'", "= 5", "10000..20000000 b/s"]),
    ("SET_BITRATE", {"bitrate": 20_000_001}, "out_of_range", "bitrate", ["'bitrate'", "10000..20000000 b/s"]),
    ("MARK_TEST_POINT", {"test_point": -1}, "out_of_range", "test_point", ["'test_point'", "0..65535"]),
    ("SET_BITRATE", {"rate": 1}, "unknown_argument", "rate", ["'rate'", "arguments: bitrate"]),
    ("SET_BITRATE", {}, "missing_argument", "bitrate", ["'bitrate'", "10000..20000000 b/s"]),
    ("SET_BITRATE", {"bitrate": "fast"}, "wrong_type", "bitrate", ["'bitrate'", "whole number", "'fast'"]),
    ("SET_BITRATE", {"bitrate": 1e5 + 0.5}, "wrong_type", "bitrate", ["'bitrate'", "whole number"]),
    ("SET_BITRATE", {"bitrate": True}, "wrong_type", "bitrate", ["'bitrate'"]),
    ("SET_BITRATE", {"bitrate": float("nan")}, "wrong_type", "bitrate", ["'bitrate'"]),
    ("SELECT_SYSTEM", {"system": "tertiary"}, "not_a_choice", "system", ["'system'", "'tertiary'",
                                                                          "one of 'primary', 'backup'"]),
    ("SET_GROUP_RATE", {"group": "structures", "samples_per_frame": 3}, "not_a_choice", "samples_per_frame",
     ["'samples_per_frame'", "one of '1', '2', '4'"]),
    ("INJECT_FAULT", {"fault": None}, "wrong_type", "fault", ["'fault'", "'egt_overtemp'"]),
])
def test_validation_errors_name_the_argument_and_what_is_allowed(name, raw, code, argument, words):
    with pytest.raises(CommandRejected) as info:
        validate(DEFS[name], raw)
    e = info.value
    assert (e.code, e.argument) == (code, argument)
    assert e.message.startswith(name + ":")
    for w in words:
        assert w in e.message
    assert e.allowed is not None
    json.dumps(e.as_wire())


def test_arguments_must_be_an_object():
    with pytest.raises(CommandRejected, match="arguments must be an object") as info:
        check_args(DEFS["SET_BITRATE"], [1_500_000])
    assert info.value.code == "bad_arguments"


def test_effects_name_the_parameter_and_value():
    bitrate = DEFS["SET_BITRATE"].effect
    args = check_args(DEFS["SET_BITRATE"], {"bitrate": 1_500_400})
    assert bitrate.parameter(args) == "BITRATE_KBPS" and bitrate.expected(args) == 1500
    assert bitrate.holds(args, {"BITRATE_KBPS": 1500.0})
    assert not bitrate.holds(args, {"BITRATE_KBPS": 1501.0}) and not bitrate.holds(args, {})
    group = DEFS["SET_GROUP_RATE"].effect
    fc = check_args(DEFS["SET_GROUP_RATE"], {"group": "flight controls", "samples_per_frame": "4"})
    vib = check_args(DEFS["SET_GROUP_RATE"], {"group": "structures", "samples_per_frame": "2"})
    assert (group.parameter(fc), group.expected(fc)) == ("FC_SPF", 4)
    assert (group.parameter(vib), group.expected(vib)) == ("VIB_SPF", 2)
    for name, arg, code, param in [("SELECT_SYSTEM", "backup", 1, "SYSTEM"), ("INJECT_FAULT", "vibration", 3, "FAULT"),
                                   ("MARK_TEST_POINT", 42, 42, "TEST_POINT")]:
        d = DEFS[name]
        values = check_args(d, {d.args[0].name: arg})
        assert (d.effect.parameter(values), d.effect.expected(values)) == (param, code)


def test_definitions_as_wire_give_consoles_range_hints():
    wire = definitions_as_wire()
    json.dumps(wire)
    by_name = {d["name"]: d for d in wire}
    bitrate = by_name["SET_BITRATE"]["args"][0]
    assert (bitrate["min"], bitrate["max"], bitrate["units"], bitrate["allowed"]) == (
        10_000, 20_000_000, "b/s", "10000..20000000 b/s")
    assert by_name["SELECT_SYSTEM"]["hazardous"] and by_name["SELECT_SYSTEM"]["args"][0]["choices"] == {
        "primary": 0, "backup": 1}
    assert by_name["SET_BITRATE"]["effect"] == "BITRATE_KBPS == round(bitrate/1000)"


@pytest.mark.parametrize("make", [
    lambda: ArgSpec("x", "u16"),
    lambda: ArgSpec("x", "u32", 5, 1),
    lambda: ArgSpec("x", "u32", -1, 10),
    lambda: ArgSpec("x", "i32", 0.5, 10),
    lambda: ArgSpec("x", "enum"),
    lambda: ArgSpec("x", "enum", choices={"a": 1, "b": 1}),
    lambda: ArgSpec("x", "u32", choices={"a": 1}),
    lambda: CommandDef("X", 0),
    lambda: CommandDef("X", 1, (ArgSpec("a", "u32"), ArgSpec("a", "f32"))),
    lambda: CommandService([CommandDef("X", 1), CommandDef("Y", 1)], FakeEncoder()),
])
def test_bad_definitions_are_refused_at_load(make):
    with pytest.raises(ValueError):
        make()


def test_i32_and_f32_arguments():
    d = CommandDef("TRIM", 9, (ArgSpec("offset", "i32", -100, 100), ArgSpec("gain", "f32", 0.5, 2.0, units="x")))
    assert validate(d, {"offset": -100, "gain": 1}) == [("i32", -100), ("f32", 1.0)]
    with pytest.raises(CommandRejected, match=r"'gain' = 2\.5 is out of range: allowed 0\.5\.\.2 x"):
        validate(d, {"offset": 0, "gain": 2.5})


# -- authority ----------------------------------------------------------------------------------------------------

def test_take_is_granted_when_free_or_already_ours():
    a = Authority()
    [ev] = a.take(ALICE, T0)
    assert ev == {"type": "authority", "action": "take", "holder": "alice", "role": "director", "since_ns": T0,
                  "expires_ns": None, "by": "alice", "previous": None}
    [again] = a.take(ALICE, T0 + S)
    assert again["since_ns"] == T0 and a.holds("alice", T0 + S)


def test_take_is_refused_naming_the_holder():
    a = Authority()
    a.take(ALICE, T0)
    with pytest.raises(AuthorityRefused, match="held by alice \\(director\\)") as info:
        a.take(BOB, T0 + S)
    assert info.value.code == "held"
    with pytest.raises(AuthorityRefused, match="held by alice"):
        a.require(BOB, T0 + S)
    a.require(ALICE, T0 + S)


@pytest.mark.parametrize("p", [VIEWER, ENGINEER])
def test_viewers_and_engineers_cannot_hold_authority(p):
    a = Authority()
    with pytest.raises(AuthorityRefused, match=f"role {p.role} may not hold command authority") as info:
        a.take(p, T0)
    assert info.value.code == "role" and a.holder(T0) is None


def test_admin_override():
    a = Authority()
    a.take(BOB, T0)
    with pytest.raises(AuthorityRefused, match="admin"):
        a.override(ALICE, T0 + S)
    [ev] = a.override(ROOT, T0 + 2 * S)
    assert (ev["action"], ev["holder"], ev["role"], ev["previous"], ev["by"]) == ("override", "root", "admin",
                                                                                  "bob", "root")
    with pytest.raises(AuthorityRefused, match="held by root \\(admin\\)"):
        a.require(BOB, T0 + 3 * S)


def test_release_only_by_holder_or_admin():
    a = Authority()
    assert a.release(ALICE, T0) == []  # nothing held: nothing to do
    a.take(ALICE, T0)
    with pytest.raises(AuthorityRefused, match="only alice \\(director\\) or an admin") as info:
        a.release(BOB, T0 + S)
    assert info.value.code == "not_holder"
    [ev] = a.release(ALICE, T0 + S)
    assert (ev["action"], ev["holder"], ev["previous"]) == ("release", None, "alice")
    a.take(BOB, T0 + 2 * S)
    [ev] = a.release(ROOT, T0 + 3 * S)
    assert (ev["by"], ev["previous"]) == ("root", "bob")
    with pytest.raises(AuthorityRefused, match="nobody holds command authority"):
        a.require(BOB, T0 + 3 * S)


def test_lease_expires_unless_renewed():
    a = Authority(lease_s=30)
    [ev] = a.take(ALICE, T0)
    assert ev["expires_ns"] == T0 + 30 * S
    assert a.expire(T0 + 29 * S) == []
    [ev] = a.renew(ALICE, T0 + 29 * S)
    assert ev["expires_ns"] == T0 + 59 * S and ev["since_ns"] == T0
    with pytest.raises(AuthorityRefused):
        a.renew(BOB, T0 + 30 * S)
    assert a.holds("alice", T0 + 58 * S) and not a.holds("alice", T0 + 59 * S)
    with pytest.raises(AuthorityRefused, match="lease ran out") as info:
        a.require(ALICE, T0 + 59 * S)
    assert info.value.code == "lapsed"
    [ev] = a.expire(T0 + 60 * S)
    assert (ev["action"], ev["holder"], ev["previous"], ev["by"]) == ("expire", None, "alice", None)
    assert a.expire(T0 + 61 * S) == []


def test_a_lapsed_lease_does_not_block_someone_else():
    a = Authority(lease_s=10)
    a.take(ALICE, T0)
    events = a.take(BOB, T0 + 11 * S)  # nobody ticked in between
    assert [e["action"] for e in events] == ["expire", "take"] and a.holds("bob", T0 + 11 * S)
    assert a.as_wire(T0 + 12 * S)["holder"] == "bob"
    assert a.as_wire(T0 + 22 * S)["holder"] is None


# -- history ------------------------------------------------------------------------------------------------------

def test_record_lifecycle_and_wire_form():
    r = CommandRecord(1, "SET_BITRATE", 1, {"bitrate": 1_500_000}, "alice", "director", reason="TP 4.2")
    for i, st in enumerate([State.QUEUED, State.RELEASED, State.SENT, State.ACKNOWLEDGED, State.COMPLETED]):
        r.advance(st, T0 + i)
    assert r.terminal
    w = r.as_wire()
    json.dumps(w)
    assert w["state"] == "COMPLETED" and w["times"] == {"QUEUED": T0, "RELEASED": T0 + 1, "SENT": T0 + 2,
                                                        "ACKNOWLEDGED": T0 + 3, "COMPLETED": T0 + 4}
    with pytest.raises(ValueError, match="COMPLETED -> SENT"):
        r.advance(State.SENT, T0 + 5)
    q = CommandRecord(2, "X", None, {}, "bob", "director")
    with pytest.raises(ValueError):
        q.advance(State.SENT, T0)


def test_history_keeps_the_latest_n():
    h = History(3)
    for i in range(1, 6):
        h.add(CommandRecord(i, "X", 1, {}, "u", "director"))
    assert [r.id for r in h] == [3, 4, 5] and len(h) == 3
    assert h.get(2) is None and h.get(4).id == 4
    assert [r["id"] for r in h.as_wire(2)] == [4, 5] and h.latest(0) == []


# -- the service: refusals ----------------------------------------------------------------------------------------

def _refusal(svc, enc, act, code, *words):
    """Run ``act``; it must leave exactly one REJECTED record, one audit entry and nothing new to send."""
    audits, queued = len(svc.audit), [r.id for r in svc.queued]
    events = act()
    rec = record_of(events)
    assert (rec["state"], rec["code"]) == ("REJECTED", code), rec
    for w in words:
        assert w in rec["detail"], (w, rec["detail"])
    assert list(rec["times"]) == ["REJECTED"]
    assert svc.history.get(rec["id"]).state == State.REJECTED
    assert len(svc.audit) == audits + 1
    entry = svc.audit[-1]
    assert (entry["outcome"], entry["code"], entry["record_id"], entry["user"]) == (
        "rejected", code, rec["id"], rec["user"])
    assert entry["detail"] == rec["detail"] and entry["ts"] == rec["times"]["REJECTED"]
    assert [r.id for r in svc.queued] == queued and svc.in_flight is None
    if not queued:
        assert svc.next_to_send(T0 + 99 * S) is None and enc.calls == []
    json.dumps(events)
    return rec


BITRATE = {"bitrate": 1_500_000}


@pytest.mark.parametrize("p", [VIEWER, ENGINEER])
def test_viewer_and_engineer_are_refused(svc, enc, p):
    rec = _refusal(svc, enc, lambda: svc.submit(p, "SET_BITRATE", BITRATE, now_ns=T0 + S), "role",
                   f"role {p.role} may not send commands", "director or admin")
    assert rec["role"] == str(p.role) and rec["args"] == BITRATE


def test_refused_without_authority(enc):
    svc = CommandService(VEHICLE_COMMANDS, enc)
    _refusal(svc, enc, lambda: svc.submit(ALICE, "SET_BITRATE", BITRATE, now_ns=T0), "authority",
             "nobody holds command authority")


def test_refused_when_someone_else_holds_authority(svc, enc):
    _refusal(svc, enc, lambda: svc.submit(BOB, "SET_BITRATE", BITRATE, now_ns=T0 + S), "authority",
             "held by alice (director)")


def test_hazardous_command_needs_arm(svc, enc):
    rec = _refusal(svc, enc, lambda: svc.submit(ALICE, "SELECT_SYSTEM", {"system": "backup"}, now_ns=T0 + S),
                   "hazardous", "SELECT_SYSTEM is hazardous", "arm it")
    assert rec["hazardous"] and rec["args"] == {"system": "backup"}


@pytest.mark.parametrize("args, code, words", [
    ({"bitrate": 5}, "out_of_range", ["'bitrate'", "10000..20000000 b/s"]),
    ({"bitrate": 1_500_000, "rate": 1}, "unknown_argument", ["'rate'", "arguments: bitrate"]),
    ({}, "missing_argument", ["'bitrate'"]),
    ("1500000", "bad_arguments", ["must be an object"]),
])
def test_bad_arguments_are_refused(svc, enc, args, code, words):
    rec = _refusal(svc, enc, lambda: svc.submit(ALICE, "SET_BITRATE", args, now_ns=T0 + S), code, *words)
    assert rec["name"] == "SET_BITRATE" and rec["opcode"] == 1


def test_wrong_enum_is_refused(svc, enc):
    _refusal(svc, enc, lambda: svc.submit(ALICE, "SET_GROUP_RATE", {"group": "avionics", "samples_per_frame": "2"},
                                          now_ns=T0 + S),
             "not_a_choice", "'group'", "'avionics'", "one of 'flight controls', 'structures'")


def test_unknown_command_is_refused(svc, enc):
    rec = _refusal(svc, enc, lambda: svc.submit(ALICE, "SELF_DESTRUCT", {}, now_ns=T0 + S), "unknown_command",
                   "'SELF_DESTRUCT'", "SET_BITRATE")
    assert rec["opcode"] is None


def test_replayed_client_seq_is_refused(svc, enc):
    svc.submit(ALICE, "MARK_TEST_POINT", {"test_point": 1}, client_seq=41, now_ns=T0 + S)
    rec = _refusal(svc, enc, lambda: svc.submit(ALICE, "MARK_TEST_POINT", {"test_point": 1}, client_seq=41,
                                                now_ns=T0 + 2 * S),
                   "replay", "replayed sequence number", "41")
    assert rec["client_seq"] == 41 and svc.audit[-1]["client_seq"] == 41


def test_replay_protection_is_per_user_and_covers_refused_attempts(svc, enc):
    # A refused attempt still uses its number: resending it later must not slip through.
    svc.submit(ALICE, "SET_BITRATE", {"bitrate": 1}, client_seq=7, now_ns=T0 + S)
    _refusal(svc, enc, lambda: svc.submit(ALICE, "SET_BITRATE", BITRATE, client_seq=7, now_ns=T0 + 2 * S), "replay")
    svc.authority.override(ROOT, T0 + 3 * S)
    assert record_of(svc.submit(ROOT, "SET_BITRATE", BITRATE, client_seq=7, now_ns=T0 + 3 * S))["state"] == "QUEUED"
    _refusal(svc, enc, lambda: svc.submit(ROOT, "SET_BITRATE", BITRATE, client_seq=True, now_ns=T0 + 4 * S),
             "bad_client_seq")


def test_rate_limit_per_user(svc, enc):
    for i in range(5):
        assert record_of(svc.submit(ALICE, "MARK_TEST_POINT", {"test_point": i}, now_ns=T0 + i * S))["state"] == "QUEUED"
    _refusal(svc, enc, lambda: svc.submit(ALICE, "MARK_TEST_POINT", {"test_point": 9}, now_ns=T0 + 9 * S),
             "rate_limit", "at most 5 commands per 10 s", "next one allowed in 1.0 s")
    assert len(svc.queued) == 5
    # Refusals do not count against the limit, and the window slides.
    assert record_of(svc.submit(ALICE, "MARK_TEST_POINT", {"test_point": 9}, now_ns=T0 + 10 * S))["state"] == "QUEUED"


def test_arm_is_checked_like_submit(svc, enc):
    audits = len(svc.audit)
    arm_id, expires, events = svc.arm(ENGINEER, "SELECT_SYSTEM", {"system": "backup"}, now_ns=T0 + S)
    assert (arm_id, expires) == (None, None) and record_of(events)["code"] == "role"
    arm_id, _, events = svc.arm(ALICE, "SELECT_SYSTEM", {"system": "sideways"}, now_ns=T0 + S)
    assert arm_id is None and record_of(events)["code"] == "not_a_choice"
    arm_id, _, events = svc.arm(BOB, "INJECT_FAULT", {"fault": "vibration"}, now_ns=T0 + S)
    assert arm_id is None and record_of(events)["code"] == "authority"
    assert len(svc.audit) == audits + 3 and svc.arms == [] and enc.calls == []


def test_execute_after_arm_expired_is_refused(svc, enc):
    arm_id, expires, _ = svc.arm(ALICE, "SELECT_SYSTEM", {"system": "backup"}, reason="EMER drill",
                                 now_ns=T0 + S)
    assert expires == T0 + 11 * S
    assert svc.tick(T0 + 10 * S) == []
    [ev] = svc.tick(T0 + 11 * S)
    assert (ev["type"], ev["action"], ev["arm_id"], ev["detail"]) == ("arm", "disarmed", arm_id,
                                                                       "not executed within 10 s")
    rec = _refusal(svc, enc, lambda: svc.execute(ALICE, arm_id, now_ns=T0 + 12 * S), "arm_expired",
                   f"arm {arm_id} (SELECT_SYSTEM) expired", "arm it again")
    assert (rec["name"], rec["arm_id"], rec["reason"], rec["args"]) == ("SELECT_SYSTEM", arm_id, "EMER drill",
                                                                        {"system": "backup"})


def test_execute_of_an_expired_arm_before_any_tick_disarms_it(svc, enc):
    arm_id, _, _ = svc.arm(ALICE, "INJECT_FAULT", {"fault": "egt_overtemp"}, now_ns=T0)
    events = svc.execute(ALICE, arm_id, now_ns=T0 + 10 * S)
    assert events[0]["action"] == "disarmed" and svc.arms == []
    assert record_of(events)["code"] == "arm_expired"


def test_execute_by_another_user_is_refused(svc, enc):
    arm_id, _, _ = svc.arm(ALICE, "SELECT_SYSTEM", {"system": "backup"}, now_ns=T0 + S)
    svc.authority.override(ROOT, T0 + 2 * S)
    _refusal(svc, enc, lambda: svc.execute(ROOT, arm_id, now_ns=T0 + 2 * S), "arm_user",
             "was armed by alice", "only they may execute it")
    assert [a.id for a in svc.arms] == [arm_id]  # still alice's


def test_execute_unknown_or_used_arm_is_refused(svc, enc):
    _refusal(svc, enc, lambda: svc.execute(ALICE, 99, now_ns=T0 + S), "arm_unknown", "no such arm: 99")
    arm_id, _, _ = svc.arm(ALICE, "SELECT_SYSTEM", {"system": "backup"}, now_ns=T0 + S)
    assert record_of(svc.execute(ALICE, arm_id, now_ns=T0 + 2 * S))["state"] == "QUEUED"
    rec = record_of(svc.execute(ALICE, arm_id, now_ns=T0 + 3 * S))
    assert (rec["state"], rec["code"]) == ("REJECTED", "arm_used")


def test_execute_needs_authority_still(svc, enc):
    arm_id, _, _ = svc.arm(ALICE, "SELECT_SYSTEM", {"system": "backup"}, now_ns=T0 + S)
    svc.authority.release(ALICE, T0 + 2 * S)
    _refusal(svc, enc, lambda: svc.execute(ALICE, arm_id, now_ns=T0 + 3 * S), "authority")


def test_disarm(svc):
    arm_id, _, _ = svc.arm(ALICE, "SELECT_SYSTEM", {"system": "backup"}, now_ns=T0 + S)
    with pytest.raises(CommandRejected, match="belongs to alice"):
        svc.disarm(BOB, arm_id, T0 + 2 * S)
    [ev] = svc.disarm(ALICE, arm_id, T0 + 2 * S)
    assert (ev["action"], ev["detail"]) == ("disarmed", "disarmed by alice")
    assert record_of(svc.execute(ALICE, arm_id, now_ns=T0 + 3 * S))["code"] == "arm_disarmed"
    with pytest.raises(CommandRejected, match="was disarmed by alice"):
        svc.disarm(ALICE, arm_id, T0 + 4 * S)
    with pytest.raises(CommandRejected, match="no such arm"):
        svc.disarm(ALICE, [arm_id], T0 + 4 * S)


# -- the service: the happy path and verification -----------------------------------------------------------------

def test_happy_path_queued_released_sent_acknowledged_completed(svc, enc):
    events = svc.submit(ALICE, "SET_BITRATE", BITRATE, reason="TP 4.2: double the frame rate", client_seq=1,
                        now_ns=T0 + 1 * S)
    assert states(events) == ["QUEUED"]
    rid = record_of(events)["id"]
    assert svc.audit[-1] == {"ts": T0 + S, "user": "alice", "role": "director", "command": "SET_BITRATE",
                             "args": BITRATE, "outcome": "accepted", "reason": "TP 4.2: double the frame rate",
                             "code": "", "detail": "", "client_seq": 1, "record_id": rid, "arm_id": None}

    out = svc.next_to_send(T0 + 2 * S)
    assert out.record.id == rid and out.record.sequence == 1 and states(out.events) == ["RELEASED"]
    assert enc.calls == [(1, 0x01, [("u32", 1_500_000)], False)] and out.packet.startswith(b"UP|1|1|")
    assert svc.next_to_send(T0 + 2 * S) is None  # one in flight

    assert states(svc.sent(rid, T0 + 3 * S)) == ["SENT"]
    assert svc.observe(QUIET, T0 + 4 * S) == []  # no echo yet
    assert states(ack(svc, 0x01, now=T0 + 5 * S)) == ["ACKNOWLEDGED"]  # BITRATE_KBPS still 1000
    assert svc.observe({"BITRATE_KBPS": 1200}, T0 + 6 * S) == []
    events = svc.observe({"BITRATE_KBPS": 1500}, T0 + 7 * S)
    rec = record_of(events)
    assert rec["state"] == "COMPLETED" and (rec["code"], rec["detail"]) == ("", "")
    assert rec["times"] == {"QUEUED": T0 + S, "RELEASED": T0 + 2 * S, "SENT": T0 + 3 * S,
                            "ACKNOWLEDGED": T0 + 5 * S, "COMPLETED": T0 + 7 * S}
    assert (rec["user"], rec["role"], rec["reason"], rec["client_seq"], rec["sequence"]) == (
        "alice", "director", "TP 4.2: double the frame rate", 1, 1)
    assert svc.in_flight is None and len(svc.audit) == 1
    assert svc.tick(T0 + 60 * S) == []


def test_ack_and_effect_in_one_observation(svc):
    svc.submit(ALICE, "SET_GROUP_RATE", {"group": "structures", "samples_per_frame": "4"}, now_ns=T0)
    rec, packet, _ = send_next(svc, T0)
    assert states(ack(svc, 0x02, now=T0 + S, FC_SPF=4)) == ["ACKNOWLEDGED"]  # the other group's parameter
    assert states(svc.observe({"VIB_SPF": 4}, T0 + 2 * S)) == ["COMPLETED"]
    svc.submit(ALICE, "MARK_TEST_POINT", {"test_point": 17}, now_ns=T0 + 3 * S)
    send_next(svc, T0 + 3 * S)
    assert states(ack(svc, 0x04, count=9, now=T0 + 4 * S, TEST_POINT=17)) == ["ACKNOWLEDGED", "COMPLETED"]


def test_hazardous_arm_then_execute(svc, enc):
    arm_id, expires, [ev] = svc.arm(ALICE, "SELECT_SYSTEM", {"system": "backup"}, reason="primary degraded",
                                    client_seq=5, now_ns=T0 + S)
    assert (ev["type"], ev["action"], ev["arm_id"], ev["command"], ev["args"], ev["expires_ns"]) == (
        "arm", "armed", arm_id, "SELECT_SYSTEM", {"system": "backup"}, T0 + 11 * S)
    assert svc.audit[-1]["outcome"] == "armed" and svc.audit[-1]["arm_id"] == arm_id
    assert svc.next_to_send(T0 + 2 * S) is None  # arming sends nothing
    events = svc.execute(ALICE, arm_id, client_seq=6, now_ns=T0 + 10 * S - 1)
    assert [e.get("action") for e in events] == ["executed", None]
    rec = record_of(events)
    assert (rec["state"], rec["hazardous"], rec["arm_id"], rec["reason"], rec["client_seq"]) == (
        "QUEUED", True, arm_id, "primary degraded", 6)
    assert [a["outcome"] for a in svc.audit] == ["armed", "accepted"]
    _, _, _ = send_next(svc, T0 + 10 * S)
    assert enc.calls == [(1, 0x03, [("u32", 1)], True)]
    assert states(ack(svc, 0x03, now=T0 + 11 * S, SYSTEM=1)) == ["ACKNOWLEDGED", "COMPLETED"]


@pytest.mark.parametrize("result, code, words", [
    (2, "vehicle_rejected", "the vehicle rejected the command"),
    (3, "bad_crc", "bad packet (CRC or format)"),
    (4, "stale_sequence", "stale sequence number"),
])
def test_vehicle_refusal_fails_the_command(svc, result, code, words):
    svc.submit(ALICE, "SET_BITRATE", BITRATE, now_ns=T0)
    rec, _, _ = send_next(svc, T0)
    events = ack(svc, 0x01, result=result, now=T0 + S)
    r = record_of(events)
    assert (r["state"], r["code"]) == ("FAILED", code) and words in r["detail"] and f"CMD_RESULT {result}" in r["detail"]
    assert "ACKNOWLEDGED" not in r["times"] and svc.in_flight is None


def test_vehicle_refusal_seen_without_the_count_moving(svc):
    # A vehicle that counts only accepted commands: a fresh failure result is still ours.
    svc.submit(ALICE, "SET_BITRATE", BITRATE, now_ns=T0)
    send_next(svc, T0)
    assert record_of(svc.observe({"CMD_RESULT": 3}, T0 + S))["code"] == "bad_crc"


def test_echo_of_another_opcode_is_not_an_ack(svc):
    svc.submit(ALICE, "SET_BITRATE", BITRATE, now_ns=T0)
    send_next(svc, T0)
    assert ack(svc, 0x04, now=T0 + S) == []
    r = record_of(svc.tick(T0 + 2 * S))
    assert (r["state"], r["code"]) == ("TIMED_OUT", "ack_timeout")
    assert "CMD_LAST_OPCODE is 4" in r["detail"]


def test_command_counter_wraps(enc):
    svc = CommandService(VEHICLE_COMMANDS, enc)
    svc.authority.take(ALICE, T0)
    svc.observe({**QUIET, "CMD_COUNT": 65535}, T0)
    svc.submit(ALICE, "MARK_TEST_POINT", {"test_point": 3}, now_ns=T0)
    send_next(svc, T0)
    assert states(ack(svc, 0x04, count=0, now=T0 + S, TEST_POINT=3)) == ["ACKNOWLEDGED", "COMPLETED"]


def test_ack_timeout(svc):
    svc.submit(ALICE, "SET_BITRATE", BITRATE, now_ns=T0)
    rec, _, _ = send_next(svc, T0 + S)
    assert svc.tick(T0 + 3 * S - 1) == []
    r = record_of(svc.tick(T0 + 3 * S))
    assert (r["state"], r["code"]) == ("TIMED_OUT", "ack_timeout")
    assert "no acknowledgement within 2 s" in r["detail"] and "CMD_COUNT 7, was 7" in r["detail"]
    assert r["times"]["TIMED_OUT"] == T0 + 3 * S and svc.in_flight is None
    assert ack(svc, 0x01, now=T0 + 4 * S) == []  # a late echo changes nothing


def test_effect_timeout(svc):
    svc.submit(ALICE, "SET_BITRATE", BITRATE, now_ns=T0)
    send_next(svc, T0)
    ack(svc, 0x01, now=T0 + S)
    assert svc.tick(T0 + 11 * S - 1) == []
    r = record_of(svc.tick(T0 + 11 * S))
    assert (r["state"], r["code"]) == ("TIMED_OUT", "effect_timeout")
    assert "effect not seen within 10 s: BITRATE_KBPS = 1000, expected 1500" in r["detail"]
    assert list(r["times"]) == ["QUEUED", "RELEASED", "SENT", "ACKNOWLEDGED", "TIMED_OUT"]


def test_released_but_never_reported_sent_times_out(svc):
    svc.submit(ALICE, "SET_BITRATE", BITRATE, now_ns=T0)
    out = svc.next_to_send(T0)
    r = record_of(svc.tick(T0 + 2 * S))
    assert (r["state"], r["code"]) == ("TIMED_OUT", "send_timeout")
    assert svc.sent(out.record.id, T0 + 3 * S) == []  # too late: ignored


def test_send_failure(svc):
    svc.submit(ALICE, "SET_BITRATE", BITRATE, now_ns=T0)
    svc.submit(ALICE, "MARK_TEST_POINT", {"test_point": 1}, now_ns=T0)
    out = svc.next_to_send(T0)
    r = record_of(svc.send_failed(out.record.id, "network unreachable", T0 + 1))
    assert (r["state"], r["code"], r["detail"]) == ("FAILED", "send_failed", "send failed: network unreachable")
    nxt = svc.next_to_send(T0 + 2)
    assert nxt.record.name == "MARK_TEST_POINT" and nxt.record.sequence == 2


def test_one_in_flight_in_order_with_increasing_sequence(svc, enc):
    for tp in (1, 2, 3):
        svc.submit(ALICE, "MARK_TEST_POINT", {"test_point": tp}, now_ns=T0 + tp)
    assert [r.values["test_point"] for r in svc.queued] == [1, 2, 3]
    first, _, _ = send_next(svc, T0 + S)
    assert svc.next_to_send(T0 + S) is None and len(svc.queued) == 2
    svc.tick(T0 + 3 * S)  # first times out: the slot is free
    second, _, _ = send_next(svc, T0 + 3 * S)
    assert svc.next_to_send(T0 + 3 * S) is None
    ack(svc, 0x04, count=8, now=T0 + 4 * S, TEST_POINT=2)
    third, _, _ = send_next(svc, T0 + 5 * S)
    assert [(c[0], c[2]) for c in enc.calls] == [(1, [("u32", 1)]), (2, [("u32", 2)]), (3, [("u32", 3)])]
    assert (first.state, second.state, third.state) == (State.TIMED_OUT, State.COMPLETED, State.SENT)
    assert svc.next_to_send(T0 + 6 * S) is None and svc.queued == []


def test_sequence_start_is_configurable(enc):
    svc = CommandService(VEHICLE_COMMANDS, enc, sequence_start=500)
    svc.authority.take(ALICE, T0)
    svc.observe(QUIET, T0)
    svc.submit(ALICE, "SET_BITRATE", BITRATE, now_ns=T0)
    assert svc.next_to_send(T0).record.sequence == 500


def test_commands_without_effect_complete_on_ack_and_without_echo_on_send(enc):
    defs = [CommandDef("PING", 0x10), CommandDef("BLIND", 0x11, echo=False),
            CommandDef("BLIND_EFFECT", 0x12, (ArgSpec("v", "u32", 0, 9),), echo=False,
                       effect=EffectCheck("V", lambda a: a["v"]), timeout_complete_s=1)]
    svc = CommandService(defs, enc)
    svc.authority.take(ALICE, T0)
    svc.observe({"CMD_COUNT": 0, "CMD_RESULT": 0, "CMD_LAST_OPCODE": 0}, T0)
    svc.submit(ALICE, "PING", {}, now_ns=T0)
    _, _, _ = send_next(svc, T0)
    assert states(ack(svc, 0x10, count=1, now=T0 + 1)) == ["ACKNOWLEDGED", "COMPLETED"]
    svc.submit(ALICE, "BLIND", None, now_ns=T0 + 2)
    _, _, events = send_next(svc, T0 + 2)
    assert states(events) == ["RELEASED", "SENT", "COMPLETED"] and "nothing to verify" in record_of(events)["detail"]
    svc.submit(ALICE, "BLIND_EFFECT", {"v": 3}, now_ns=T0 + 3)
    send_next(svc, T0 + 3)
    assert svc.observe({"V": 2}, T0 + 4) == []
    r = record_of(svc.tick(T0 + 3 + S))
    assert (r["state"], r["code"]) == ("TIMED_OUT", "effect_timeout") and "V = 2, expected 3" in r["detail"]


def test_no_telemetry_means_not_sent(enc):
    svc = CommandService(VEHICLE_COMMANDS, enc)
    svc.authority.take(ALICE, T0)
    svc.submit(ALICE, "SET_BITRATE", BITRATE, now_ns=T0)
    out = svc.next_to_send(T0)
    assert out.packet is None and (out.record.state, out.record.code) == (State.FAILED, "no_telemetry")
    assert states(out.events) == ["FAILED"] and enc.calls == [] and svc.next_to_send(T0) is None


def test_encode_error_fails_the_record_and_frees_the_queue(svc):
    svc.encode = FakeEncoder(fail=True)
    svc.submit(ALICE, "SET_BITRATE", BITRATE, now_ns=T0)
    svc.submit(ALICE, "MARK_TEST_POINT", {"test_point": 1}, now_ns=T0)
    out = svc.next_to_send(T0)
    assert out.packet is None and out.record.code == "encode_failed" and "opcode too large" in out.record.detail
    assert svc.next_to_send(T0).record.name == "MARK_TEST_POINT"


def test_queued_commands_do_not_leave_after_authority_changes_hands(svc, enc):
    svc.submit(ALICE, "SET_BITRATE", BITRATE, now_ns=T0)
    svc.authority.override(ROOT, T0 + 1)
    out = svc.next_to_send(T0 + 2)
    assert out.packet is None and out.record.code == "authority_lost"
    assert "now held by root (admin)" in out.record.detail and enc.calls == []


def test_admin_override_then_commands(svc, enc):
    _refusal(svc, enc, lambda: svc.submit(BOB, "SET_BITRATE", BITRATE, now_ns=T0 + S), "authority",
             "held by alice")
    [ev] = svc.authority.override(ROOT, T0 + 2 * S)
    assert (ev["holder"], ev["previous"], ev["action"]) == ("root", "alice", "override")
    assert record_of(svc.submit(ROOT, "SET_BITRATE", BITRATE, now_ns=T0 + 3 * S))["state"] == "QUEUED"
    _refusal(svc, enc, lambda: svc.submit(ALICE, "MARK_TEST_POINT", {"test_point": 1}, now_ns=T0 + 4 * S),
             "authority", "held by root (admin)")


def test_tick_lapses_the_authority_lease(enc):
    svc = CommandService(VEHICLE_COMMANDS, enc, authority=Authority(lease_s=60))
    svc.authority.take(ALICE, T0)
    [ev] = svc.tick(T0 + 60 * S)
    assert (ev["type"], ev["action"], ev["previous"]) == ("authority", "expire", "alice")
    assert record_of(svc.submit(ALICE, "SET_BITRATE", BITRATE, now_ns=T0 + 61 * S))["code"] == "authority"


def test_audit_callback_and_one_entry_per_attempt(enc):
    seen = []
    svc = CommandService(VEHICLE_COMMANDS, enc, on_audit=seen.append, rate_limit=None)
    svc.authority.take(ALICE, T0)
    svc.submit(VIEWER, "SET_BITRATE", BITRATE, now_ns=T0)
    svc.submit(ALICE, "SET_BITRATE", BITRATE, now_ns=T0)
    arm_id, _, _ = svc.arm(ALICE, "INJECT_FAULT", {"fault": "vibration"}, now_ns=T0)
    svc.execute(ALICE, arm_id, now_ns=T0)
    svc.tick(T0 + 60 * S)  # no attempt: no entry
    assert [e["outcome"] for e in seen] == ["rejected", "accepted", "armed", "accepted"]
    assert list(svc.audit) == seen
    json.dumps(seen)


def test_observe_ignores_what_is_not_a_number(svc):
    svc.submit(ALICE, "SET_BITRATE", BITRATE, now_ns=T0)
    send_next(svc, T0)
    assert svc.observe({"CMD_COUNT": "eight", "CMD_RESULT": float("nan"), "NAME": None}, T0 + 1) == []
    assert states(ack(svc, 0x01, now=T0 + 2, BITRATE_KBPS=1500.0)) == ["ACKNOWLEDGED", "COMPLETED"]


def test_refused_arguments_are_recorded_safely(svc, enc):
    rec = _refusal(svc, enc, lambda: svc.submit(ALICE, "SET_BITRATE", {"bitrate": object(), 3: "x" * 999},
                                                now_ns=T0), "unknown_argument", "unknown argument 3")
    assert set(rec["args"]) == {"bitrate", "3"} and len(rec["args"]["3"]) == 200


def test_long_reason_is_truncated(svc):
    rec = record_of(svc.submit(ALICE, "SET_BITRATE", BITRATE, reason="  why " * 500, now_ns=T0))
    assert len(rec["reason"]) == 500 and rec["reason"].startswith("why")


def test_snapshot_for_a_new_console(svc):
    svc.submit(ALICE, "SET_BITRATE", BITRATE, now_ns=T0)
    svc.arm(ALICE, "SELECT_SYSTEM", {"system": "backup"}, now_ns=T0)
    snap = svc.snapshot(T0 + 1)
    json.dumps(snap)
    assert [e["type"] for e in snap] == ["authority", "arm", "command"]
    assert snap[0]["holder"] == "alice" and snap[0]["action"] == "state"
    assert svc.definitions_as_wire() == definitions_as_wire()


def test_history_is_bounded(enc):
    svc = CommandService(VEHICLE_COMMANDS, enc, history_size=3)
    for i in range(5):
        svc.submit(VIEWER, "SET_BITRATE", BITRATE, now_ns=T0 + i)
    assert [r.id for r in svc.history] == [3, 4, 5] and len(svc.audit) == 5


def test_console_principal_with_a_role_name_works(svc):
    from groundstation.console.session import Principal as ConsolePrincipal

    rec = record_of(svc.submit(ConsolePrincipal("alice", "director"), "SET_BITRATE", BITRATE, now_ns=T0))
    assert rec["state"] == "QUEUED"
    rec = record_of(svc.submit(ConsolePrincipal("zed", "pilot"), "SET_BITRATE", BITRATE, now_ns=T0))
    assert (rec["code"], rec["role"]) == ("role", "pilot")


def test_with_the_real_uplink_codec():
    uplink = pytest.importorskip("telemetry_formats.uplink")
    svc = CommandService(VEHICLE_COMMANDS, uplink.encode_uplink)
    svc.authority.take(ALICE, T0)
    svc.observe(QUIET, T0)
    svc.submit(ALICE, "SET_BITRATE", BITRATE, now_ns=T0)
    arm_id, _, _ = svc.arm(ALICE, "SELECT_SYSTEM", {"system": "backup"}, now_ns=T0)
    svc.execute(ALICE, arm_id, now_ns=T0)
    out = svc.next_to_send(T0)
    assert out.packet and out.record.state == State.RELEASED
    assert out.packet == uplink.encode_uplink(1, 0x01, [("u32", 1_500_000)], False)
    svc.sent(out.record.id, T0)
    ack(svc, 0x01, now=T0 + 1, BITRATE_KBPS=1500)
    out = svc.next_to_send(T0 + 2)
    assert out.packet == uplink.encode_uplink(2, 0x03, [("u32", 1)], True)
