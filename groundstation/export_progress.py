"""The export progress bar: a small text bar on stderr when it is a terminal."""

from __future__ import annotations

import sys
import time

__all__ = ["Progress"]


class Progress:
    """A small progress bar on a stream (stderr); silent unless the stream is a terminal."""

    def __init__(self, total: int, unit: str = "", *, label: str = "export", stream=None,
                 enabled: bool | None = None, min_interval_s: float = 0.1) -> None:
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            try:
                enabled = self.stream.isatty()
            except (AttributeError, ValueError):
                enabled = False
        self.enabled = bool(enabled)
        self.total = max(int(total), 0)
        self.unit = unit
        self.label = label
        self.done = 0
        self.min_interval_s = min_interval_s
        self._t0 = time.monotonic()
        self._last = 0.0
        self._shown = False

    def update(self, n: int) -> None:
        self.done += int(n)
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last >= self.min_interval_s or (self.total and self.done >= self.total):
            self._last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        width = 30
        frac = min(self.done / self.total, 1.0) if self.total else 0.0
        bar = "#" * int(frac * width)
        rate = self.done / max(now - self._t0, 1e-6)
        text = (f"\r{self.label} {frac * 100:5.1f}% |{bar:<{width}}| {_human(self.done, self.unit)}"
                f"/{_human(self.total, self.unit)} {_human(rate, self.unit)}/s ")
        try:
            self.stream.write(text)
            self.stream.flush()
            self._shown = True
        except (OSError, ValueError):
            self.enabled = False

    def close(self) -> None:
        if self.enabled:
            self._draw(time.monotonic())
            if self._shown:
                try:
                    self.stream.write("\n")
                    self.stream.flush()
                except (OSError, ValueError):
                    pass
        self.enabled = False


def _human(n: float, unit: str) -> str:
    if unit == "B":
        for suffix in ("B", "kB", "MB", "GB", "TB"):
            if abs(n) < 1000 or suffix == "TB":
                return f"{n:.0f} {suffix}" if suffix == "B" else f"{n:.1f} {suffix}"
            n /= 1000
    if abs(n) >= 1e6:
        return f"{n / 1e6:.1f}M {unit}".rstrip()
    if abs(n) >= 1e3:
        return f"{n / 1e3:.1f}k {unit}".rstrip()
    return f"{n:.0f} {unit}".rstrip()

