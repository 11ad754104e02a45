"""Limit alarms, link status and the parameter catalog, driven without I/O."""

from __future__ import annotations

import numpy as np
import pytest

from groundstation.alarms import AlarmManager
from groundstation.catalog import Catalog, SelectionError
from groundstation.console.decimate import summarize
from groundstation.ingest.link import LOST, OK, WAITING, LinkMonitor
from groundstation.simulator.flight import vehicle_database
from telemetry_formats.decom import SampleBatch
from telemetry_formats.paramdb import Fragment, FrameFormat, Limits, Parameter, ParameterDatabase

S = 1_000_000_000
NAMES = ["EGT", "AOA", "NZ"]
EGT, AOA, NZ = 0, 1, 2


def summary(pid: int, values, limits, t0: int = 0):
    n = len(values)
    return summarize(SampleBatch(
        pid=np.full(n, pid, np.int32), t_ns=t0 + np.arange(n, dtype=np.int64) * 10,
        raw=np.zeros(n, np.uint32), eu=np.asarray(values, np.float64), limit=np.asarray(limits, np.int8)))


def kinds(events) -> list[str]:
    return [e.kind for e in events]


# -- alarms ---------------------------------------------------------------------------


def test_raised_when_a_parameter_leaves_its_limits() -> None:
    am = AlarmManager(NAMES)
    assert am.observe(summary(EGT, [800, 840], [0, 0])) == []
    (ev,) = am.observe(summary(EGT, [840, 870, 880, 860], [0, 1, 1, 1], t0=1000))
    a = ev.alarm
    assert ev.kind == "raised" and ev.by is None
    assert (a.param_id, a.name, a.severity, a.direction) == (EGT, "EGT", 1, "high")
    assert a.value == 880.0, "the worst value of the excursion"
    assert a.triggered_ns == 1010, "when the limit was first passed"
    assert a.acknowledged_by is None and a.returned_ns is None
    assert list(am.active) == [EGT]
    w = ev.as_wire()
    assert w["type"] == "alarm" and w["event"] == "raised"
    assert w["alarm"] | {"value": 880.0} == {
        "id": a.id, "param": EGT, "name": "EGT", "severity": "WARNING", "direction": "high", "value": 880.0,
        "triggered_ns": 1010, "acknowledged_by": None, "acknowledged_ns": None, "returned_ns": None}
    # staying out at the same severity raises nothing new
    assert am.observe(summary(EGT, [870, 875], [1, 1])) == []


def test_low_direction_reports_the_minimum() -> None:
    am = AlarmManager(NAMES)
    (ev,) = am.observe(summary(AOA, [0.0, -5.5, -7.0, -6.0], [0, -1, -1, -1]))
    assert (ev.kind, ev.alarm.direction, ev.alarm.severity, ev.alarm.value) == ("raised", "low", 1, -7.0)
    (ev,) = am.observe(summary(AOA, [-8.5], [-2]))
    assert (ev.kind, ev.alarm.direction, ev.alarm.severity, ev.alarm.value) == ("escalated", "low", 2, -8.5)
    assert ev.as_wire()["alarm"]["severity"] == "CRITICAL"


def test_escalated_from_warning_to_critical_keeps_the_alarm_and_needs_a_new_ack() -> None:
    am = AlarmManager(NAMES)
    (raised,) = am.observe(summary(EGT, [900], [1]))
    am.acknowledge(raised.alarm.id, "alice", 5)
    (ev,) = am.observe(summary(EGT, [900, 960, 955], [1, 2, 2], t0=100))
    assert ev.kind == "escalated" and ev.alarm is raised.alarm and ev.alarm.id == raised.alarm.id
    assert (ev.alarm.severity, ev.alarm.value, ev.alarm.triggered_ns) == (2, 960.0, 110)
    assert ev.alarm.acknowledged_by is None and ev.alarm.acknowledged_ns is None
    assert len(am.active) == 1
    # going back to warning is not a new event (the alarm keeps its worst severity)
    assert am.observe(summary(EGT, [900], [1])) == []
    assert am.active[EGT].severity == 2


def test_critical_at_once_is_raised_not_escalated() -> None:
    am = AlarmManager(NAMES)
    (ev,) = am.observe(summary(NZ, [1.0, 7.0, 5.0], [0, 2, 1]))
    assert (ev.kind, ev.alarm.severity, ev.alarm.value) == ("raised", 2, 7.0)


def test_returned_then_cleared_by_the_acknowledgement() -> None:
    am = AlarmManager(NAMES)
    (raised,) = am.observe(summary(EGT, [900], [1]))
    (ev,) = am.observe(summary(EGT, [860, 840], [1, 0], t0=500))
    assert ev.kind == "returned" and ev.alarm.returned_ns == 510
    assert EGT in am.active, "not acknowledged yet: it stays"
    assert am.observe(summary(EGT, [830], [0])) == [], "returned once"
    ev = am.acknowledge(raised.alarm.id, "bob", 777)
    assert (ev.kind, ev.by, ev.alarm.acknowledged_by, ev.alarm.acknowledged_ns) == ("cleared", "bob", "bob", 777)
    assert am.active == {}
    with pytest.raises(KeyError):
        am.acknowledge(raised.alarm.id, "bob", 778)


def test_acknowledged_then_cleared_when_back_in_limits() -> None:
    am = AlarmManager(NAMES)
    (raised,) = am.observe(summary(EGT, [900], [1]))
    ev = am.acknowledge(raised.alarm.id, "alice", 50)
    assert (ev.kind, ev.by) == ("acknowledged", "alice")
    assert EGT in am.active, "still out of limits: it stays"
    # a second acknowledgement keeps the first operator
    ev = am.acknowledge(raised.alarm.id, "bob", 60)
    assert ev.kind == "acknowledged" and ev.alarm.acknowledged_by == "alice" and ev.alarm.acknowledged_ns == 50
    assert am.observe(summary(EGT, [880], [1])) == []
    (ev,) = am.observe(summary(EGT, [860, 800], [1, 0], t0=900))
    assert ev.kind == "cleared" and ev.alarm.returned_ns == 910
    assert am.active == {}
    # a new excursion is a new alarm with a new id
    (ev,) = am.observe(summary(EGT, [900], [1]))
    assert ev.kind == "raised" and ev.alarm.id > raised.alarm.id


def test_out_again_after_returning_needs_the_parameter_back_before_clearing() -> None:
    am = AlarmManager(NAMES)
    (raised,) = am.observe(summary(EGT, [900], [1]))
    assert kinds(am.observe(summary(EGT, [800], [0]))) == ["returned"]
    assert kinds(am.observe(summary(EGT, [900], [1]))) == ["reactivated"]
    assert am.active[EGT].returned_ns is None, "out of limits again"
    ev = am.acknowledge(raised.alarm.id, "alice", 1)
    assert ev.kind == "acknowledged" and EGT in am.active
    assert kinds(am.observe(summary(EGT, [800], [0]))) == ["cleared"]


def test_raised_and_returned_within_one_batch() -> None:
    am = AlarmManager(NAMES)
    evs = am.observe(summary(NZ, [1.0, 6.5, 1.0], [0, 2, 0], t0=0))
    assert kinds(evs) == ["raised", "returned"]
    assert evs[0].alarm.value == 6.5 and evs[0].alarm.returned_ns == 20


def test_acknowledge_of_an_unknown_id_raises_key_error() -> None:
    am = AlarmManager(NAMES)
    with pytest.raises(KeyError):
        am.acknowledge(1, "alice", 0)
    am.observe(summary(EGT, [900], [1]))
    with pytest.raises(KeyError):
        am.acknowledge(12345, "alice", 0)


def test_alarms_of_several_parameters_in_one_summary() -> None:
    am = AlarmManager(NAMES)
    b = SampleBatch(pid=np.array([0, 1, 2, 0, 1, 2], np.int32), t_ns=np.arange(6, dtype=np.int64),
                    raw=np.zeros(6, np.uint32), eu=np.array([900, 0, -3.0, 910, -6, 1.0]),
                    limit=np.array([1, 0, -2, 1, -1, 0], np.int8))
    evs = am.observe(summarize(b))
    assert sorted((e.kind, e.alarm.name, e.alarm.severity, e.alarm.direction) for e in evs) == [
        ("raised", "AOA", 1, "low"), ("raised", "EGT", 1, "high"), ("raised", "NZ", 2, "low"),
        ("returned", "NZ", 2, "low")]
    assert len({e.alarm.id for e in evs}) == 3
    assert [w["name"] for w in am.as_wire()] == ["EGT", "AOA", "NZ"]


# -- link status ---------------------------------------------------------------------------------


def test_link_waiting_ok_lost_and_back() -> None:
    link = LinkMonitor(timeout_s=0.5, now_ns=100)
    assert link.status.state == WAITING and link.status.since_ns == 100 and link.status.last_data_ns is None
    assert link.check(10 * S) is None, "no data yet is not a loss"
    st = link.data(10 * S)
    assert (st.state, st.since_ns, st.last_data_ns, st.reason) == (OK, 10 * S, 10 * S, "data flowing")
    assert link.data(10 * S + 200_000_000) is None
    assert link.status.last_data_ns == 10 * S + 200_000_000 and link.status.since_ns == 10 * S
    assert link.check(10 * S + 700_000_000) is None, "exactly the timeout: not lost yet"
    st = link.check(10 * S + 700_000_001)
    assert st.state == LOST and st.since_ns == 10 * S + 200_000_000, "lost since the last datagram"
    assert "0.5 s" in st.reason and link.losses == 1
    assert link.check(20 * S) is None, "reported once"
    st = link.data(12 * S + 700_000_000)
    assert (st.state, st.since_ns, st.last_data_ns) == (OK, 12 * S + 700_000_000, 12 * S + 700_000_000)
    assert st.reason == "data back after 2.5 s"
    assert link.check(12 * S + 800_000_000) is None
    assert link.check(14 * S).state == LOST and link.losses == 2


def test_link_status_as_dict() -> None:
    link = LinkMonitor(timeout_s=1.0, now_ns=5)
    assert link.status.as_dict() == {"state": WAITING, "since_ns": 5, "last_data_ns": None, "reason": "no data yet"}


# -- catalog -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog(vehicle_database(1_000_000), version=7)


def test_catalog_ids_follow_the_database(catalog) -> None:
    db = vehicle_database(1_000_000)
    assert len(catalog) == len(db.parameters)
    assert [e.name for e in catalog.entries] == db.names
    assert [e.id for e in catalog.entries] == list(range(len(db.parameters)))
    assert catalog.ids() == {p.name: i for i, p in enumerate(db.parameters)}
    egt = catalog.by_name["EGT"]
    assert (egt.units, egt.group, egt.description) == ("degC", "propulsion", "exhaust gas temperature")
    assert egt.limits == (None, None, 850.0, 950.0)
    assert egt.rate_hz == pytest.approx(1e6 / 1040 / 4)
    assert catalog.by_name["VIB"].rate_hz == pytest.approx(4 * 1e6 / 1040)


def test_groups_and_group_ids(catalog) -> None:
    assert catalog.group_names == sorted(catalog.groups) == [
        "air data", "flight controls", "hydraulics", "navigation", "propulsion", "status", "structures"]
    assert catalog.groups["navigation"].tolist() == [catalog.by_name[n].id for n in ("LAT", "LON", "HEADING")]
    assert catalog.groups["flight controls"].dtype == np.int32
    for gi, g in enumerate(catalog.group_names):
        assert all(catalog.group_of[i] == gi for i in catalog.groups[g])
    assert sum(len(v) for v in catalog.groups.values()) == len(catalog)


def test_select_by_names_globs_and_groups(catalog) -> None:
    ids = catalog.by_name
    assert catalog.select(names=["IAS", "ALT"]).tolist() == sorted([ids["ALT"].id, ids["IAS"].id])
    assert catalog.select(globs=["*_RATE"]).tolist() == [ids[n].id for n in ("PITCH_RATE", "ROLL_RATE", "YAW_RATE")]
    assert catalog.select(globs=["CMD_*"]).tolist() == [ids[n].id for n in ("CMD_COUNT", "CMD_LAST_OPCODE", "CMD_RESULT")]
    assert catalog.select(groups=["hydraulics"]).tolist() == [ids["HYD_PRESS"].id]
    both = catalog.select(names=["EGT", "N1"], globs=["N[12]"], groups=["propulsion"])
    assert both.tolist() == catalog.groups["propulsion"].tolist(), "union, sorted, no duplicates"
    assert both.dtype == np.int32
    assert catalog.select(globs=["*"]).tolist() == list(range(len(catalog)))
    assert catalog.select().tolist() == []


def test_globs_are_case_sensitive(catalog) -> None:
    with pytest.raises(SelectionError) as info:
        catalog.select(globs=["alt"])
    assert info.value.unknown == ["glob:alt"]


def test_selection_errors_list_every_unknown(catalog) -> None:
    with pytest.raises(SelectionError) as info:
        catalog.select(names=["ALT", "NOPE", "ALSO_NOPE"], globs=["*_RATE", "ZZ*"], groups=["status", "engine"])
    e = info.value
    assert isinstance(e, ValueError)
    assert e.unknown == ["NOPE", "ALSO_NOPE", "group:engine", "glob:ZZ*"]
    for u in e.unknown:
        assert u in str(e)


def test_as_wire(catalog) -> None:
    w = catalog.as_wire()
    assert w["version"] == 7 and w["groups"] == catalog.group_names
    assert len(w["params"]) == len(catalog)
    aoa = w["params"][catalog.by_name["AOA"].id]
    assert aoa == {"id": catalog.by_name["AOA"].id, "name": "AOA", "units": "deg", "group": "air data",
                   "rate": pytest.approx(1e6 / 1040), "description": "angle of attack",
                   "limits": [-8.0, -5.0, 15.0, 20.0], "kind": "real",
                   "source": "pcm", "channel": None}


def test_counters_discretes_and_enumerations_say_how_they_are_shown() -> None:
    from groundstation.catalog import Catalog
    from groundstation.simulator.flight import vehicle_database

    cat = Catalog(vehicle_database(), 1)
    wire = {p["name"]: p for p in cat.as_wire()["params"]}
    assert wire["SYSTEM"]["kind"] == "enum" and wire["SYSTEM"]["enum"] == {"0": "primary", "1": "backup"}
    assert wire["CMD_COUNT"]["kind"] == "integer" and "enum" not in wire["CMD_COUNT"]
    assert wire["NZ"]["kind"] == "real"
    back = Catalog.from_wire(cat.as_wire())
    assert back.by_name["SYSTEM"].enum == ((0, "primary"), (1, "backup")) and back.by_name["CMD_COUNT"].kind == "integer"


def test_parameters_without_a_group_go_to_the_default_group() -> None:
    frame = FrameFormat(name="F", words_per_minor=4)
    db = ParameterDatabase(frame, [
        Parameter("A", (Fragment(1),)),
        Parameter("B", (Fragment(2),), group="g", limits=Limits(warning_low=1.0)),
        Parameter("C", (Fragment(3),)),
    ])
    cat = Catalog(db)
    assert cat.group_names == [Catalog.DEFAULT_GROUP, "g"]
    assert cat.select(groups=[Catalog.DEFAULT_GROUP]).tolist() == [0, 2]
    assert cat.group_of.tolist() == [0, 1, 0]
    assert cat.by_name["A"].rate_hz is None, "no bit rate, no nominal rate"
    assert cat.by_name["B"].limits == (None, 1.0, None, None)


def test_empty_catalog() -> None:
    cat = Catalog()
    assert len(cat) == 0 and cat.as_wire() == {"version": 0, "groups": [], "params": []}
    assert cat.select().size == 0
    with pytest.raises(SelectionError):
        cat.select(names=["ALT"])
