"""Console policies: who may acknowledge, alarms across reconfiguration, optional ids."""

from __future__ import annotations

import msgpack
import numpy as np

from groundstation.catalog import Catalog
from groundstation.console.hub import Hub
from groundstation.console.session import Principal
from groundstation.simulator.flight import vehicle_database
from telemetry_formats.decom import SampleBatch


def drain(s) -> list[dict]:
    out = []
    while (d := s.outbox.pop()) is not None:
        out.append(msgpack.unpackb(d))
    return out


def over_limit(hub: Hub, name: str, value: float, state: int) -> None:
    pid = hub.catalog.by_name[name].id
    hub.on_samples(SampleBatch(pid=np.array([pid], np.int32), t_ns=np.array([1]), raw=np.zeros(1, np.uint32),
                               eu=np.array([value]), limit=np.array([state], np.int8)), 1)


def test_viewers_cannot_acknowledge_engineers_can():
    hub = Hub(Catalog(vehicle_database(), 1))
    viewer = hub.connect(Principal("vic", "viewer"))
    eng = hub.connect(Principal("eve", "engineer"))
    over_limit(hub, "EGT", 999.0, 2)
    alarm = [m for m in drain(viewer) if m["type"] == "alarm"][0]["alarm"]
    viewer.receive(msgpack.packb({"type": "ack", "id": 1, "alarm": alarm["id"]}))
    err = [m for m in drain(viewer) if m["type"] == "error"][0]
    assert err["code"] == "forbidden" and "engineer" in err["message"]
    drain(eng)
    eng.receive(msgpack.packb({"type": "ack", "id": 2, "alarm": alarm["id"]}))
    msgs = drain(eng)
    assert [m["type"] for m in msgs] == ["alarm", "acked"] and msgs[0]["alarm"]["acknowledged_by"] == "eve"


def test_reconfiguration_clears_alarms_and_ids_never_repeat():
    hub = Hub(Catalog(vehicle_database(), 1))
    s = hub.connect(Principal("eve", "engineer"))
    over_limit(hub, "EGT", 999.0, 2)
    first = [m for m in drain(s) if m["type"] == "alarm"][0]["alarm"]["id"]
    hub.set_catalog(Catalog(vehicle_database(2_000_000), 2), 5)
    msgs = drain(s)
    cleared = [m for m in msgs if m["type"] == "alarm"]
    assert cleared[0]["event"] == "cleared" and cleared[0]["by"] == "reconfiguration"
    over_limit(hub, "EGT", 999.0, 2)
    second = [m for m in drain(s) if m["type"] == "alarm"][0]["alarm"]["id"]
    assert second > first


def test_null_request_id_is_accepted():
    hub = Hub(Catalog(vehicle_database(), 1))
    s = hub.connect(Principal("vic", "viewer"))
    drain(s)
    s.receive(msgpack.packb({"type": "ping", "id": None}))
    assert drain(s)[0]["type"] == "pong"
    s.receive(msgpack.packb({"type": "unsubscribe", "id": 3, "sub": -1}))
    err = drain(s)[0]
    assert err["message"] == "'sub' must be >= 0, got -1"
