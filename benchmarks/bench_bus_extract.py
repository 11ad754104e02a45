"""Bus parameter extraction: decoded 1553 messages and ARINC-429 words to samples, ours vs a per-row Python loop.

The ICD is examples/icd_mixed_vehicle.csv (13 parameters in 3 ADC messages on 1553,
11 ARINC-429 parameters; its schedule report, RT2 R SA1, is never in these messages). A 1553 packet holds 100 ms of a fully loaded bus (about 50,000
words/s: 500 messages of 8 data words, half of them the ADC's, half other RTs); an
ARINC packet 100 ms of a high-speed bus (290 words, a tenth of them unknown labels).
The peer does the same matching and decoding message by message in plain Python
(dict lookup, bit arithmetic), as a script over pychapter10's objects would.

    flock /tmp/gs-bench.lock python -m benchmarks.bench_bus_extract
"""

from __future__ import annotations

import statistics
import struct
import time
from pathlib import Path

import numpy as np

from telemetry_formats.ch10.arinc429 import Words429
from telemetry_formats.ch10.mil1553 import Messages1553
from telemetry_formats.decom import BusExtractor
from telemetry_formats.paramdb import load_mission

ICD = Path(__file__).resolve().parents[1] / "examples" / "icd_mixed_vehicle.csv"


def messages(n: int, rng: np.random.Generator) -> Messages1553:
    rt = np.where(np.arange(n) % 2 == 0, 1, rng.integers(2, 30, n)).astype(np.uint8)
    sa = np.where(rt == 1, 1 + np.arange(n) % 3, rng.integers(1, 30, n)).astype(np.uint8)
    tr = np.where((rt == 1) & (sa == 3), 0, 1).astype(np.uint8)
    data = rng.integers(0, 1 << 16, (n, 32), dtype=np.uint64).astype(np.uint16)
    wc = np.where(sa == 1, 8, np.where(sa == 2, 4, 1)).astype(np.uint8)
    z = np.zeros(n)
    return Messages1553(5, np.arange(n, dtype=np.int64) * 2000, z.astype(np.uint16), z.astype(bool), z.astype(bool),
                        z.astype(bool), z.astype(np.uint16), z.astype(np.uint16), z.astype(np.uint16), rt, tr, sa, wc,
                        wc, data, z.astype(np.int64))


def words(n: int, rng: np.random.Generator) -> Words429:
    labels = np.array([0o310, 0o311, 0o312, 0o313, 0o314, 0o324, 0o325, 0o270, 0o012, 0o377], np.uint8)
    label = labels[np.arange(n) % len(labels)]
    data = rng.integers(0, 1 << 19, n, dtype=np.uint32)
    ssm = rng.integers(0, 4, n, dtype=np.uint32).astype(np.uint8)
    word = (data << np.uint32(10)) | (ssm.astype(np.uint32) << np.uint32(29))
    z = np.zeros(n)
    return Words429(6, np.arange(n, dtype=np.int64) * 3400, z.astype(np.uint32),
                    np.where(label == 0o012, 1, 0).astype(np.uint8), z.astype(bool), z.astype(bool), word, label,
                    z.astype(np.uint8), data, ssm, np.ones(n, bool))


def peer_1553(msgs: Messages1553, defs: dict) -> list:
    """Per message: look the key up, then per definition pull, join, convert, calibrate."""
    out = []
    for i in range(len(msgs)):
        key = (int(msgs.rt[i]), int(msgs.tr[i]), int(msgs.subaddress[i]))
        for p in defs.get(key, ()):
            raw = 0
            for f in p.fragments:
                w = int(msgs.data[i, f.word - 1])
                raw = (raw << f.bits) | ((w >> (16 - f.lsb)) & ((1 << f.bits) - 1))
            bits = sum(f.bits for f in p.fragments)
            if p.encoding == "signed" and raw >> (bits - 1):
                x = raw - (1 << bits)
            elif p.encoding == "float":
                x = struct.unpack(">f", raw.to_bytes(4, "big"))[0]
            else:
                x = raw
            out.append((p.name, int(msgs.rtc[i]) * 100, p.calibration.apply(np.array([x]))[0]))
    return out


def peer_429(ws: Words429, defs: dict) -> list:
    out = []
    for i in range(len(ws)):
        for p in defs.get(int(ws.label[i]), ()):
            if p.bus is not None and p.bus != int(ws.bus[i]):
                continue
            msb, lsb = p.field_bits
            raw = (int(ws.word[i]) >> (lsb - 1)) & ((1 << (msb - lsb + 1)) - 1)
            ssm = int(ws.ssm[i])
            if p.encoding == "bnr":
                x = raw - (1 << (msb - lsb + 1)) if raw >> (msb - lsb) else raw
                valid = ssm in (2, 3)
            elif p.encoding == "bcd":
                x = sum(((raw >> (4 * d)) & 15) * 10**d for d in range((msb - lsb + 4) // 4))
                x, valid = (-x if ssm == 3 else x), ssm != 1
            else:
                x, valid = raw, ssm in (0, 2)
            out.append((p.name, int(ws.rtc[i]) * 100, p.calibration.apply(np.array([x]))[0] if valid else np.nan))
    return out


def timed(fn, repeat: int) -> float:
    """Median seconds per call over ``repeat`` calls, after one warm-up."""
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    db = load_mission([ICD])
    rng = np.random.default_rng(1)
    m, w = messages(500, rng), words(290, rng)
    ex = BusExtractor(db)
    by_key: dict = {}
    for p in db.mil1553:
        by_key.setdefault((p.rt, int(p.tr == "T"), p.subaddress), []).append(p)
    by_label: dict = {}
    for p in db.arinc429:
        by_label.setdefault(p.label, []).append(p)
    b1, b2 = ex.extract_1553(m), ex.extract_429(w)
    assert len(b1) == len(peer_1553(m, by_key)) and len(b2) == len(peer_429(w, by_label))
    rows = []
    for what, n, ours, peer, samples in (
            ("1553, 500 messages (100 ms of a full bus)", len(m), lambda: ex.extract_1553(m),
             lambda: peer_1553(m, by_key), len(b1)),
            ("ARINC-429, 290 words (100 ms of a 100 kb/s bus)", len(w), lambda: ex.extract_429(w),
             lambda: peer_429(w, by_label), len(b2))):
        runs = [(timed(ours, 200), timed(peer, 5)) for _ in range(3)]
        t_ours = statistics.median(r[0] for r in runs)
        t_peer = statistics.median(r[1] for r in runs)
        rows.append((what, n, samples, t_ours, t_peer))
    print("| packet | samples | ours per packet | rows/s | per-row Python loop | ratio |")
    print("| --- | --- | --- | --- | --- | --- |")
    for what, n, samples, t_ours, t_peer in rows:
        print(f"| {what} | {samples} | {t_ours * 1e6:.0f} us | {n / t_ours / 1e6:.2f} M | {t_peer * 1e3:.1f} ms |"
              f" {t_peer / t_ours:.0f}x |")
    t1553 = rows[0][3]
    print(f"\n8 fully loaded 1553 buses (10 packets/s each): {8 * 10 * t1553 * 100:.1f} % of a core for extraction")


if __name__ == "__main__":
    main()
