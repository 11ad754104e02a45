"""The parameter database model: a PCM frame format and the named parameters in it.

Word positions follow IRIG 106 Chapter 4/9: the minor frame sync pattern counts
as one word, and the first word after it is word 1, so a minor frame of ``MF1``
words holds data words 1 .. MF1-1. Minor frame numbers (from the SFID counter)
are 1-based, as in the TMATS ``FP`` attribute.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

__all__ = [
    "FrameFormat",
    "Sfid",
    "Fragment",
    "Calibration",
    "Limits",
    "Parameter",
    "ParameterDatabase",
    "ConfigError",
    "ENCODINGS",
]

ENCODINGS = ("unsigned", "signed", "float")


class ConfigError(ValueError):
    """A parameter definition that cannot be used, with the parameter and field named."""


@dataclass(frozen=True)
class Sfid:
    """Where the subframe ID counter sits and how it counts."""

    word: int
    msb_bit: int = 1  # bit of the word holding the counter MSB, 1 = the word's MSB
    length: int | None = None  # counter bits; default: the word length
    first_count: int = 0
    increasing: bool = True


@dataclass(frozen=True)
class FrameFormat:
    """A Chapter 4 PCM minor/major frame format."""

    name: str
    words_per_minor: int  # including the sync pattern as one word
    word_length: int = 16
    sync_pattern: int = 0xFE6B2840
    sync_length: int = 32
    sync_mask: int | None = None  # bits that must match (X bits in TMATS are 0 here)
    minor_frames: int = 1
    bit_rate: float | None = None
    word_lengths: dict[int, int] = field(default_factory=dict)  # exceptions by word position
    sfid: Sfid | None = None

    def __post_init__(self) -> None:
        if self.words_per_minor < 2:
            raise ConfigError(f"frame {self.name!r}: words_per_minor must be >= 2")
        if not 1 <= self.sync_length <= 64:
            raise ConfigError(f"frame {self.name!r}: sync_length must be 1..64")
        for pos, bits in self.word_lengths.items():
            if not 1 <= pos < self.words_per_minor or not 1 <= bits <= 32:
                raise ConfigError(f"frame {self.name!r}: bad word length exception {pos}: {bits}")
        if not 1 <= self.word_length <= 32:
            raise ConfigError(f"frame {self.name!r}: word_length must be 1..32")
        if self.sfid and not 1 <= self.sfid.word < self.words_per_minor:
            raise ConfigError(f"frame {self.name!r}: SFID word {self.sfid.word} outside the frame")

    @property
    def data_words(self) -> int:
        """Number of data words after the sync (word positions 1..data_words)."""
        return self.words_per_minor - 1

    def widths(self) -> np.ndarray:
        """Bit width of each word position 0..data_words (0 = the sync pattern)."""
        w = np.full(self.words_per_minor, self.word_length, dtype=np.int64)
        w[0] = self.sync_length
        for pos, bits in self.word_lengths.items():
            w[pos] = bits
        return w

    @property
    def bits_per_minor(self) -> int:
        return int(self.widths().sum())

    def bit_offsets(self) -> np.ndarray:
        """Bit offset of each word position from the start of the sync pattern."""
        w = self.widths()
        return np.concatenate([[0], np.cumsum(w)[:-1]]).astype(np.int64)

    @property
    def effective_sync_mask(self) -> int:
        return (1 << self.sync_length) - 1 if self.sync_mask is None else self.sync_mask

    def ns_per_bit(self) -> float:
        return 1e9 / self.bit_rate if self.bit_rate else 0.0

    def minor_frame_rate(self) -> float | None:
        return self.bit_rate / self.bits_per_minor if self.bit_rate else None


@dataclass(frozen=True)
class Fragment:
    """One piece of a parameter: a word position and the bits of it used."""

    word: int
    mask: int | None = None  # None = the full word; else the bits used (contiguous)


@dataclass(frozen=True)
class Calibration:
    """Raw-to-engineering conversion: a polynomial (increasing order) or a pair table."""

    polynomial: tuple[float, ...] = ()
    pairs: tuple[tuple[float, float], ...] = ()

    def __post_init__(self) -> None:
        if self.polynomial and self.pairs:
            raise ConfigError("calibration has both a polynomial and pairs; choose one")
        if self.pairs:
            raws = [p[0] for p in self.pairs]
            if len(self.pairs) < 2 or any(b <= a for a, b in zip(raws, raws[1:])):
                raise ConfigError("pair table needs >= 2 pairs with increasing raw values")

    @cached_property
    def _table(self) -> tuple[np.ndarray, np.ndarray]:
        arr = np.array(self.pairs, dtype=np.float64)
        return arr[:, 0], arr[:, 1]

    @property
    def is_identity(self) -> bool:
        return not self.pairs and (not self.polynomial or tuple(self.polynomial) == (0.0, 1.0))

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Convert an array of numeric raw values (vectorized)."""
        x = np.asarray(x, dtype=np.float64)
        if self.pairs:
            return np.interp(x, *self._table)
        if not self.polynomial:
            return x
        out = np.full_like(x, self.polynomial[-1])
        for c in reversed(self.polynomial[:-1]):
            out = out * x + c
        return out


@dataclass(frozen=True)
class Limits:
    """Warning and critical limits in engineering units (None = no limit)."""

    warning_low: float | None = None
    warning_high: float | None = None
    critical_low: float | None = None
    critical_high: float | None = None

    def as_array(self) -> np.ndarray:
        """[critical_low, warning_low, warning_high, critical_high] with NaN for none."""
        vals = (self.critical_low, self.warning_low, self.warning_high, self.critical_high)
        return np.array([math.nan if v is None else v for v in vals], dtype=np.float64)

    @property
    def any(self) -> bool:
        return any(v is not None for v in (self.warning_low, self.warning_high, self.critical_low, self.critical_high))


@dataclass(frozen=True)
class Parameter:
    """A named measurement in the frame.

    ``fragments`` are concatenated most significant first. ``word_interval`` > 0
    makes a supercommutated parameter: the fragments repeat every that many
    words within the minor frame. ``frame_position``/``frame_interval`` make a
    subcommutated one: present in minor frame ``frame_position`` and every
    ``frame_interval`` frames after it (interval 0 = once per major frame).
    """

    name: str
    fragments: tuple[Fragment, ...]
    encoding: str = "unsigned"
    word_interval: int = 0
    frame_position: int | None = None
    frame_interval: int = 0
    calibration: Calibration = field(default_factory=Calibration)
    units: str = ""
    limits: Limits = field(default_factory=Limits)
    group: str = ""
    description: str = ""
    enum: tuple[tuple[int, str], ...] = ()  # (value, name) of a discrete's states, e.g. ((0, "primary"), (1, "backup"))

    def display_kind(self) -> str:
        """How a console shows the value: ``"enum"`` (by name, from ``enum``), ``"integer"`` (an integer
        word with an integer-preserving calibration: counters, discretes) or ``"real"``."""
        if self.enum:
            return "enum"
        poly = self.calibration.polynomial
        if (self.encoding in ("unsigned", "signed") and not self.calibration.pairs and len(poly) <= 2
                and all(float(c).is_integer() for c in poly)):
            return "integer"
        return "real"

    def check(self, frame: FrameFormat) -> None:
        """Raise ``ConfigError`` naming the parameter and field if it does not fit ``frame``."""
        if not self.fragments:
            raise ConfigError(f"parameter {self.name!r}: no word position")
        if self.encoding not in ENCODINGS:
            raise ConfigError(f"parameter {self.name!r}: encoding {self.encoding!r} not one of {ENCODINGS}")
        widths = frame.widths()
        for f in self.fragments:
            if not 1 <= f.word <= frame.data_words:
                raise ConfigError(
                    f"parameter {self.name!r}: word {f.word} outside 1..{frame.data_words}"
                )
            if f.mask is not None:
                m = f.mask
                if m <= 0 or m >> int(widths[f.word]):
                    raise ConfigError(f"parameter {self.name!r}: mask 0x{m:X} does not fit word {f.word}")
                low = (m & -m).bit_length() - 1
                if (m >> low) & ((m >> low) + 1):
                    raise ConfigError(f"parameter {self.name!r}: mask 0x{m:X} is not contiguous")
        if self.encoding == "float" and self.bit_width(frame) not in (16, 32, 64):
            raise ConfigError(f"parameter {self.name!r}: float needs 16, 32 or 64 bits, has {self.bit_width(frame)}")
        if self.bit_width(frame) > 64:
            raise ConfigError(f"parameter {self.name!r}: more than 64 bits")
        if self.frame_position is not None and not 1 <= self.frame_position <= frame.minor_frames:
            raise ConfigError(
                f"parameter {self.name!r}: frame_position {self.frame_position} outside 1..{frame.minor_frames}"
            )
        if self.frame_position is not None and frame.minor_frames > 1 and frame.sfid is None:
            raise ConfigError(f"parameter {self.name!r}: subcommutated but the frame has no SFID counter")

    def fragment_widths(self, frame: FrameFormat) -> list[int]:
        widths = frame.widths()
        return [bin(f.mask).count("1") if f.mask is not None else int(widths[f.word]) for f in self.fragments]

    def bit_width(self, frame: FrameFormat) -> int:
        return sum(self.fragment_widths(frame))

    def positions(self, frame: FrameFormat) -> np.ndarray:
        """Word positions (k, n_fragments) of each sample slot within a minor frame."""
        base = np.array([f.word for f in self.fragments], dtype=np.int64)
        if self.word_interval <= 0:
            return base[None, :]
        last = int(base.max())
        k = 1 + (frame.data_words - last) // self.word_interval
        return base[None, :] + self.word_interval * np.arange(k, dtype=np.int64)[:, None]

    def samples_per_minor(self, frame: FrameFormat) -> float:
        k = len(self.positions(frame))
        if self.frame_position is None:
            return float(k)
        interval = self.frame_interval or frame.minor_frames
        return k / interval

    def nominal_rate(self, frame: FrameFormat) -> float | None:
        """Samples per second, when the bit rate is known."""
        r = frame.minor_frame_rate()
        return None if r is None else r * self.samples_per_minor(frame)


@dataclass
class ParameterDatabase:
    """A frame format and its parameters, checked on construction."""

    frame: FrameFormat
    parameters: list[Parameter] = field(default_factory=list)
    source: str = ""

    def __post_init__(self) -> None:
        seen = set()
        for p in self.parameters:
            if p.name in seen:
                raise ConfigError(f"parameter {p.name!r} defined twice")
            seen.add(p.name)
            p.check(self.frame)

    def __getitem__(self, name: str) -> Parameter:
        for p in self.parameters:
            if p.name == name:
                return p
        raise KeyError(name)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.parameters]
