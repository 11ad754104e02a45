"""The Chapter 10 relative time counter (RTC): 48 bits at 10 MHz, and its wrap arithmetic.

Every place that subtracts two RTC values or masks one to 48 bits uses these, so the
wrap rule exists once: a difference is taken modulo 2**48 and read as the signed
value nearest zero (a counter that went backwards by less than half the range went
backwards; one that went forwards past the wrap went forwards).
"""

from __future__ import annotations

from typing import overload

import numpy as np

__all__ = ["RTC_HZ", "RTC_BITS", "RTC_MOD", "RTC_MASK", "NS_PER_TICK", "rtc_delta"]

RTC_HZ = 10_000_000  # the relative time counter runs at 10 MHz
RTC_BITS = 48
RTC_MOD = 1 << RTC_BITS
RTC_MASK = RTC_MOD - 1
NS_PER_TICK = 1_000_000_000 // RTC_HZ  # 100 ns
_HALF = 1 << (RTC_BITS - 1)


@overload
def rtc_delta(rtc: int, ref: int) -> int: ...
@overload
def rtc_delta(rtc: np.ndarray, ref: int) -> np.ndarray: ...
def rtc_delta(rtc: int | np.ndarray, ref: int) -> int | np.ndarray:
    """Signed ticks from ``ref`` to ``rtc`` across at most one wrap: in [-2**47, 2**47).

    A Python int gives an int; an array (any integer dtype) gives an int64 array.
    """
    if isinstance(rtc, (int, np.integer)):
        d = (int(rtc) - int(ref)) & RTC_MASK
        return d - RTC_MOD if d >= _HALF else d
    a = (np.asarray(rtc, dtype=np.int64) - np.int64(int(ref) & RTC_MASK)) & np.int64(RTC_MASK)
    return np.where(a >= _HALF, a - np.int64(RTC_MOD), a)
