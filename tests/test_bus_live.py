"""Bus data end to end: simulator (PCM, 1553, ARINC-429) -> UDP -> server -> console, recording, CSV export.

The server is given the simulator's ICD (``--params vehicle_icd.csv``); PCM comes from the
stream's TMATS. Console values, recorded values and exported values equal the simulator's
truth (``Vehicle.bus_truth``: the engineering value a decoder reads from the bits sent, at
the message's time stamp).
"""

from __future__ import annotations

import asyncio
import csv
import glob
import json
import subprocess
import sys
import urllib.request

import numpy as np

import recorder
from groundstation.simulator.buses import VEHICLE_ICD_FILE, vehicle_icd
from tests.live import Console, Sim, server


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 90))


def _truth_at(sim: Sim, name: str, t: np.ndarray) -> np.ndarray:
    """The simulator's value of ``name`` at each decoded time (the nearest sample sent, within 1 ms)."""
    tt, eu = sim.vehicle.bus_truth(name)
    j = np.clip(np.searchsorted(tt, t), 1, len(tt) - 1)
    j = np.where(np.abs(tt[j - 1] - t) < np.abs(tt[j] - t), j - 1, j)
    assert np.all(np.abs(tt[j] - t) < 1_000_000), (name, np.abs(tt[j] - t).max())
    return eu[j]


def test_bus_parameters_live_recorded_and_exported_equal_the_simulator_truth(tmp_path):
    names = vehicle_icd().names
    rec_dir = tmp_path / "rec"

    async def main():
        with server("--params", str(VEHICLE_ICD_FILE), "--record", str(rec_dir)) as srv:
            sim = Sim(srv.udp_port, bit_rate=250_000, irs_align_s=0).start()  # PCM light; the IRS aligned at start,
            # so its ARINC-429 labels carry numbers (not SSM no-computed-data) from the first word
            try:
                console = await Console.connect(srv.ws_url)
                cat = console.hello["catalog"]
                if not cat["params"]:
                    cat = (await console.until(lambda m: m["type"] == "catalog", 10))["catalog"]
                params = {p["name"]: p for p in cat["params"]}
                # one catalog, PCM and bus side by side, each with its source and channel
                assert params["ALT"]["source"] == "pcm" and params["ALT"]["channel"] == 3
                assert params["ADC_CAS"]["source"] == "1553" and params["ADC_CAS"]["channel"] == 5
                assert {params[n]["source"] for n in names} == {"1553", "429"}
                await asyncio.sleep(1.2)  # past the first time packet: times are the vehicle's own
                ok = await console.subscribe(20, names=names + ["ALT"])
                assert ok["type"] == "subscribed"
                got = await console.collect(2.0)
                health = json.load(urllib.request.urlopen(srv.http_url + "/healthz", timeout=5))
                compared = 0
                ids = {params[n]["id"]: n for n in names}
                rows: dict[str, list] = {n: [] for n in names}
                for m in got:
                    if m["type"] != "data":
                        continue
                    for j, pid in enumerate(m["ids"].tolist()):
                        if pid in ids:
                            rows[ids[pid]].append((int(m["last_t"][j]), float(m["last"][j])))
                for name, r in rows.items():
                    if not r:
                        continue
                    t = np.array([x[0] for x in r])
                    last = np.array([x[1] for x in r])
                    np.testing.assert_array_equal(last, _truth_at(sim, name, t), err_msg=name)
                    compared += 1
                assert compared >= len(names) - 3, sorted(n for n, r in rows.items() if not r)
                for name in ("NAV_LAT", "NAV_HDG", "NAV_ROLL", "ADC_CAS"):  # real numbers, not only NaN = NaN
                    assert rows[name] and np.isfinite([v for _, v in rows[name]]).all(), (name, rows[name][:3])
                # the bus monitor: every message and label seen, with rates
                mon = health["bus_monitor"]
                assert {r["channel_id"] for r in mon["mil1553"]} == {5}
                assert {r["channel_id"] for r in mon["arinc429"]} == {6}
                assert all(r["count"] > 0 for r in mon["mil1553"] + mon["arinc429"])
                assert health["configured"]["channels"] == {"pcm": [3], "1553": [5], "429": [6]}
                await console.close()
            finally:
                await sim.stop()
            return sim

    sim = run(main())
    # the same values in the HDF5 recording ...
    files = sorted(glob.glob(str(rec_dir / "*.index.json")))
    assert files
    rec = recorder.open_recording(files[-1])
    checked = 0
    for name in ("ADC_CAS", "ADC_PALT", "NAV_LAT", "GPS_GS_BCD"):
        if name not in rec.names:
            continue
        s = rec.read(name)
        assert len(s.t_ns) > 3, name
        t = s.t_ns[s.t_ns > s.t_ns[0] + 1_500_000_000]  # after the time correlation locked
        v = s.values[s.t_ns > s.t_ns[0] + 1_500_000_000]
        keep = t > sim.vehicle.bus_truth(name)[0][0]
        np.testing.assert_array_equal(v[keep], _truth_at(sim, name, t[keep]).astype(v.dtype), err_msg=name)
        checked += 1
    assert checked >= 2, rec.names
    # ... and in the CSV export
    out = tmp_path / "bus.csv"
    subprocess.run([sys.executable, "-m", "groundstation.cli", "export", files[-1], "--params", "ADC_CAS",
                    "--long", "-o", str(out)], check=True, timeout=60)
    with open(out) as f:
        exported = [r for r in csv.DictReader(f) if r.get("parameter", "ADC_CAS") == "ADC_CAS"]
    s = rec.read("ADC_CAS")
    assert len(exported) == len(s.t_ns)
    np.testing.assert_allclose([float(r["value"]) for r in exported], s.values, rtol=1e-6)


def test_set_bus_rate_is_verified_from_the_decoded_1553_schedule_report():
    from groundstation.auth import TokenIssuer
    from tests.live import SECRET, Director, vehicle_and_server

    def tok(user: str, role: str) -> str:
        return TokenIssuer(SECRET).issue(user, role, 600)

    async def main():
        async with vehicle_and_server("--params", str(VEHICLE_ICD_FILE), open_mode=False,
                                      vehicle={"bit_rate": 250_000}) as (sim, srv):
            console = await Console.connect(srv.ws_url + "?token=" + tok("eve", "engineer"))
            cat = await console.catalog()
            assert "BC_ANGLES_MS" in cat
            d = await Director.connect(f"ws://127.0.0.1:{srv.http_port}/ws/command", tok("dan", "director"))
            r = await d.request(type="authority", action="take")
            assert r["type"] == "authority_ok"
            await asyncio.sleep(1.0)  # the schedule report (12.5 Hz) has been decoded
            r = await d.request(type="command", name="SET_BUS_RATE", args={"message": "angles", "period": "50 Hz"},
                                reason="angles at 50 Hz for the roll test point", client_seq=1)
            assert r["type"] == "accepted", r
            rec_id = r["record"]["id"]
            states: list[str] = []
            final = await console.until(
                lambda m: m["type"] == "command" and m["record"]["id"] == rec_id
                and (states.append(m["record"]["state"]) or m["record"]["state"] in
                     ("COMPLETED", "FAILED", "TIMED_OUT")), 20)
            assert final["record"]["state"] == "COMPLETED", final
            assert "ACKNOWLEDGED" in states
            await console.close()
            await d.ws.close()

    run(main())


def test_replay_of_pcm_c10_into_serve_configures_its_pcm_links_and_monitors_its_buses():
    from pathlib import Path

    pcm_c10 = Path(__file__).parent / "data" / "ch10" / "pcm.c10"
    with server() as srv:
        proc = subprocess.run([sys.executable, "-m", "groundstation.cli", "replay", str(pcm_c10),
                               "--to", f"127.0.0.1:{srv.udp_port}", "--speed", "afap"],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        health = None
        for _ in range(50):  # the last datagrams reach the server
            health = json.load(urllib.request.urlopen(srv.http_url + "/healthz", timeout=5))
            mon = health["bus_monitor"]
            if sum(r["count"] for r in mon["arinc429"]) >= 1303 and sum(r["count"] for r in mon["mil1553"]) >= 411:
                break
            import time
            time.sleep(0.1)
    cfg = health["configured"]
    assert cfg is not None and cfg["source"] == "TMATS"
    assert cfg["channels"]["pcm"] == list(range(51, 59))  # 8 PCM links, each from its own P-group
    mon = health["bus_monitor"]
    assert len({r["channel_id"] for r in mon["mil1553"]}) == 8
    assert len({r["channel_id"] for r in mon["arinc429"]}) == 14
    assert sum(r["count"] for r in mon["mil1553"]) == 411
    assert sum(r["count"] for r in mon["arinc429"]) == 1303
