"""ICD parameters to bus bits and back: the inverse of ``telemetry_formats.decom.BusExtractor``.

``encode_1553`` puts engineering values into a message's data words, ``encode_429``
into an ARINC-429 word's fields, both from the parameter definitions (bits, encoding,
``raw * scale + offset``); each also returns the engineering value a decoder reads
back from those bits (quantized, clipped, NaN where the word says "no computed
data"), which is the simulator's truth.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from telemetry_formats.ch10.arinc429 import label_to_stored, odd_parity
from telemetry_formats.paramdb import Parameter429, Parameter1553

__all__ = ["encode_1553", "encode_429", "SSM_BNR_NORMAL", "SSM_NCD"]

SSM_BNR_NORMAL, SSM_NCD = 3, 1  # BNR: 11 normal operation; 01 no computed data (every matrix)
SSM_BCD_MINUS = 3


def _linear(p: Parameter1553 | Parameter429) -> tuple[float, float]:
    poly = p.calibration.polynomial or (0.0, 1.0)
    if len(poly) != 2 or p.calibration.pairs:
        raise ValueError(f"parameter {p.name!r}: the simulator encodes linear calibrations only")
    return float(poly[0]), float(poly[1])


def _integer(p, eu: np.ndarray, bits: int, signed: bool) -> tuple[np.ndarray, np.ndarray]:
    """(raw bits as uint64, the value read back) of a linear integer field."""
    c0, c1 = _linear(p)
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    x = np.clip(np.rint((eu - c0) / c1), lo, hi)
    return x.astype(np.int64).astype(np.uint64) & np.uint64((1 << bits) - 1), c1 * x + c0


def encode_1553(params: Sequence[Parameter1553], values: Mapping[str, np.ndarray], n: int,
                word_count: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(data words (n, word_count) uint16, values read back by name) of ``n`` messages carrying ``params``."""
    data = np.zeros((n, word_count), np.uint64)
    back = {}
    for p in params:
        eu = np.asarray(values[p.name], np.float64)
        bits = sum(f.bits for f in p.fragments)
        if p.encoding == "float":
            if bits != 32:
                raise ValueError(f"parameter {p.name!r}: the simulator encodes 32-bit floats only")
            f32 = eu.astype(np.float32)
            raw = f32.view(np.uint32).astype(np.uint64)
            c0, c1 = _linear(p)
            back[p.name] = c1 * f32.astype(np.float64) + c0
        else:
            raw, back[p.name] = _integer(p, eu, bits, p.encoding == "signed")
        shift = bits
        for f in p.fragments:  # most significant first
            shift -= f.bits
            part = (raw >> np.uint64(shift)) & np.uint64((1 << f.bits) - 1)
            data[:, f.word - 1] |= part << np.uint64(16 - f.lsb)
    return data.astype(np.uint16), back


def _bcd(p: Parameter429, eu: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(raw digits, minus sign, value read back) of a BCD field: 4-bit digits from the lsb up."""
    c0, c1 = _linear(p)
    x = (eu - c0) / c1
    digits = -(-bits // 4)
    top = min(9, (1 << (bits - 4 * (digits - 1))) - 1)
    v = np.clip(np.rint(np.abs(x)), 0, top * 10 ** (digits - 1) + 10 ** (digits - 1) - 1).astype(np.int64)
    raw = np.zeros(len(v), np.uint64)
    for d in range(digits):
        raw |= ((v // 10**d) % 10).astype(np.uint64) << np.uint64(4 * d)
    minus = x < 0
    return raw, minus, c1 * np.where(minus, -v, v).astype(np.float64) + c0


def encode_429(label: int, params: Sequence[Parameter429], values: Mapping[str, np.ndarray], valid: np.ndarray,
               *, sdi: int = 0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(stored 32-bit words (n,) uint32, values read back by name) of one label's words.

    ``valid`` False sends the word with SSM "no computed data" and zero data (read back
    as NaN). SSM otherwise: BNR normal operation (11), BCD its sign
    (00 plus, 11 minus), discrete normal (00). Parity is odd.
    """
    encodings = {p.encoding for p in params}
    if len(encodings & {"bnr", "bcd", "discrete"}) > 1:
        raise ValueError(f"label {label:03o}: BNR, BCD and discrete fields cannot share one word")
    n = len(valid)
    base = np.uint64(label_to_stored(label) | (sdi & 3) << 8)
    word = np.full(n, base, np.uint64)
    minus = np.zeros(n, bool)
    back = {}
    for p in params:
        eu = np.asarray(values[p.name], np.float64)
        msb, lsb = p.field_bits
        bits = msb - lsb + 1
        if p.encoding == "bcd":
            raw, m, back[p.name] = _bcd(p, eu, bits)
            minus |= m
        else:
            raw, back[p.name] = _integer(p, eu, bits, p.encoding in ("bnr", "signed"))
        word |= raw << np.uint64(lsb - 1)
    if "bnr" in encodings:
        ssm = np.where(valid, SSM_BNR_NORMAL, SSM_NCD)
    elif "bcd" in encodings:
        ssm = np.where(valid, np.where(minus, SSM_BCD_MINUS, 0), SSM_NCD)
    else:
        ssm = np.where(valid, 0, SSM_NCD)
    invalid = ~np.asarray(valid, bool)
    word[invalid] = base  # no data in a word without computed data
    for name in back:
        back[name] = np.where(invalid, np.nan, back[name])
    word |= ssm.astype(np.uint64) << np.uint64(29)
    w32 = word.astype(np.uint32)
    w32 |= (~odd_parity(w32)).astype(np.uint32) << np.uint32(31)
    return w32, back
