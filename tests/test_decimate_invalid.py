"""Decimation of invalid (NaN) bus samples: min/max skip them; an all-invalid interval shows NaN."""

from __future__ import annotations

import numpy as np

from groundstation.console.decimate import Accumulator, summarize
from telemetry_formats.decom import SampleBatch


def _batch(pid, eu):
    n = len(pid)
    return SampleBatch(np.array(pid, np.int32), np.arange(n, dtype=np.int64), np.zeros(n, np.uint32),
                       np.array(eu, np.float64), np.zeros(n, np.int8))


def test_nan_does_not_poison_min_max_and_an_all_invalid_interval_is_nan():
    acc = Accumulator(2)
    acc.add(summarize(_batch([0, 0, 0, 1, 1], [5.0, np.nan, 2.0, np.nan, np.nan])))
    out = acc.take()
    assert (out.min[0], out.max[0], out.count[0]) == (2.0, 5.0, 3)
    assert np.isnan(out.min[1]) and np.isnan(out.max[1]) and np.isnan(out.last[1]) and out.count[1] == 2
    acc.add(summarize(_batch([1], [7.0])))
    again = acc.take()
    assert (again.min[1], again.max[1], again.last[1]) == (7.0, 7.0, 7.0)
