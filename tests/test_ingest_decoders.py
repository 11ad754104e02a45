"""The ingest's table of per-data-type decoders (sans-I/O): real recordings and the simulator's stream."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from groundstation.ingest import decoders
from groundstation.ingest.core import Ingest
from groundstation.ingest.decoders import DECODERS, Decoded
from groundstation.simulator.buses import vehicle_icd
from groundstation.simulator.vehicle import Vehicle
from telemetry_formats.ch10.discrete import DATA_TYPE_DISCRETE_F1
from telemetry_formats.decom import SampleBatch

DATA = Path(__file__).parent / "data" / "ch10"


def test_pcm_c10_configures_every_pcm_link_and_monitors_every_bus_channel():
    ing = Ingest()
    res = ing.receive_packets((DATA / "pcm.c10").read_bytes(), time.time_ns())
    cfg = ing.config
    assert cfg is not None and cfg.source == "TMATS"
    assert sorted(cfg.db.pcm) == list(range(51, 59))  # 8 PCM links, each from its own P-group
    assert res.frames > 0 and ing.stats.mil1553_packets and ing.stats.arinc429_packets
    mon = ing.bus_monitor()
    assert len({r["channel_id"] for r in mon["mil1553"]}) == 8
    assert len({r["channel_id"] for r in mon["arinc429"]}) == 14
    assert sum(r["count"] for r in mon["mil1553"]) == 411
    assert sum(r["count"] for r in mon["arinc429"]) == 1303
    # one decoder per channel, each of its data type's class
    kinds = {type(d).__name__ for d in ing.decoders.values()}
    assert {"TmatsDecoder", "TimeDecoder", "PcmDecoder", "Mil1553Decoder", "Arinc429Decoder"} <= kinds


def _sim_stream(seconds: float = 1.5):
    t0 = time.time_ns()
    v = Vehicle(start_ns=t0)
    for k in range(1, int(seconds / 0.05)):
        now = t0 + k * 50_000_000
        for dg in v.advance(now):
            yield dg, now


def test_parameter_file_buses_and_tmats_pcm_side_by_side():
    icd = vehicle_icd()
    ing = Ingest(params=icd)
    batches = []
    for dg, now in _sim_stream():
        batches += ing.receive(dg, now).samples
    db = ing.config.db
    assert ing.config.source == "parameter files + TMATS"
    assert set(db.kinds) == {"pcm", "1553", "429"}
    assert {db.channels[db.ids[n]] for n in icd.names} == {5, 6}
    assert db.kinds[db.ids["ALT"]] == "pcm"
    # the TMATS's own bus measurands (same names) give way to the file's, without an error
    assert not any("defined twice" in p for p in ing.config.problems)
    seen = np.unique(np.concatenate([b.pid for b in batches]))
    assert db.ids["ADC_CAS"] in seen and db.ids["NAV_LAT"] in seen and db.ids["ALT"] in seen


def test_adding_a_data_type_is_adding_an_entry(monkeypatch):
    class DiscreteCounter:
        """A decoder for discrete F1 that reports one sample per packet (the packet's length)."""

        def __init__(self, channel_id, setup):
            self.channel_id = channel_id
            self.setup = setup

        def configure(self, setup):
            self.setup = setup

        def decode(self, p, arrival_ns):
            ids = {"DISC_LEN": 0}
            return Decoded(samples=[SampleBatch(np.zeros(1, np.int32), np.array([arrival_ns]), np.array([len(p.raw)],
                                                np.uint64), np.array([float(len(p.raw))]), np.zeros(1, np.int8), ids)])

    monkeypatch.setitem(DECODERS, DATA_TYPE_DISCRETE_F1, DiscreteCounter)
    ing = Ingest()
    res = ing.receive_packets((DATA / "discrete.c10").read_bytes(), 0)
    mine = [d for d in ing.decoders.values() if isinstance(d, DiscreteCounter)]
    assert mine and ing.stats.other_packets == len([b for b in res.samples if "DISC_LEN" in (b.ids or {})])
    assert decoders.DECODERS is DECODERS
