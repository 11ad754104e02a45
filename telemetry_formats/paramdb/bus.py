"""Bus parameters: MIL-STD-1553 and ARINC-429 measurands and where they sit in messages and words.

A 1553 parameter is found by (channel, RT address, T/R, subaddress[, word count]) and
taken from data words numbered from 1 (the first data word after the command, or
status, word), bits ``msb``..``lsb`` numbered 1..16 with 1 the word's most significant
bit, as PCM words are numbered. Fragments across words are joined most significant
first, so an IEEE float across two words lists the high word first.

An ARINC-429 parameter is found by (channel, bus, label, SDI) and taken from ARINC bits
``msb``..``lsb`` (1..32: label 1-8, SDI 9-10, data 11-29, SSM 30-31, parity 32). Its
encoding says how the bits read (``bnr``: two's complement with the sign in bit 29;
``bcd``: decimal digits, 4 bits each from ``lsb``, the sign in the SSM; ``discrete``
and ``unsigned``: plain bits; ``signed``: two's complement over ``msb``..``lsb``) and
which sign/status matrix marks a sample invalid (``SSM_RULES``).

Both reduce to a PCM ``Parameter`` over a synthetic frame (``as_slot_parameter``), so
extraction reuses the PCM slot evaluation (masks, encodings, calibration, limits).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .model import Calibration, ConfigError, Fragment, FrameFormat, Limits, Parameter

__all__ = [
    "ARINC_ENCODINGS",
    "BUS_1553_ENCODINGS",
    "SSM_INVALID",
    "SSM_RULES",
    "FRAME_1553",
    "FRAME_429",
    "WordBits",
    "Parameter1553",
    "Parameter429",
    "label_from_octal",
]

BUS_1553_ENCODINGS = ("unsigned", "signed", "float")
ARINC_ENCODINGS = ("unsigned", "signed", "bnr", "bcd", "discrete")

# SSM (bits 31, 30 as a 2-bit value) that makes a sample invalid, by sign/status matrix:
# BNR 00 failure warning, 01 no computed data, 10 functional test, 11 normal;
# BCD 00 plus, 01 no computed data, 10 functional test, 11 minus;
# discrete 00 verified/normal, 01 no computed data, 10 functional test, 11 failure warning.
SSM_INVALID: dict[str, frozenset[int]] = {
    "bnr": frozenset({0, 1}),
    "bcd": frozenset({1}),
    "discrete": frozenset({1, 3}),
    "none": frozenset(),
}
SSM_RULES = tuple(SSM_INVALID)
_DEFAULT_SSM = {"bnr": "bnr", "bcd": "bcd", "discrete": "discrete", "unsigned": "none", "signed": "none"}

# Synthetic frames the slot evaluation runs on: 32 data words of 16 bits after a
# one-word "sync" (word position = data word number), and one 32-bit ARINC word.
FRAME_1553 = FrameFormat(name="1553 data words", words_per_minor=33, word_length=16, sync_length=16)
FRAME_429 = FrameFormat(name="ARINC-429 word", words_per_minor=2, word_length=32, sync_length=32)


def label_from_octal(text: object, what: str) -> int:
    """An ARINC label written in octal (``"203"`` or the integer 203 as written) to its value 0..255."""
    s = str(text).strip()
    if s.lower().startswith("0o"):
        s = s[2:]
    if not s or any(c not in "01234567" for c in s) or int(s, 8) > 0o377:
        raise ConfigError(f"{what}: label {text!r} is not an octal label 000..377")
    return int(s, 8)


def _where(origin: str, name: str) -> str:
    return f"{origin}: parameter {name!r}" if origin else f"parameter {name!r}"


@dataclass(frozen=True)
class WordBits:
    """One fragment of a 1553 parameter: data word number (1 = first) and bits ``msb``..``lsb`` (1 = MSB)."""

    word: int
    msb: int = 1
    lsb: int = 16

    @property
    def mask(self) -> int:
        return ((1 << (17 - self.msb)) - 1) & ~((1 << (16 - self.lsb)) - 1)

    @property
    def bits(self) -> int:
        return self.lsb - self.msb + 1


@dataclass(frozen=True)
class Parameter1553:
    """A measurand in MIL-STD-1553 messages of one channel."""

    name: str
    channel: int
    rt: int
    tr: str  # "T": the RT transmits (RT-to-BC); "R": it receives (BC-to-RT)
    subaddress: int
    fragments: tuple[WordBits, ...]
    word_count: int | None = None  # None: any word count
    encoding: str = "unsigned"
    calibration: Calibration = field(default_factory=Calibration)
    units: str = ""
    limits: Limits = field(default_factory=Limits)
    group: str = ""
    description: str = ""
    origin: str = ""  # where it was defined: "file", "file line N", "TMATS"

    kind = "1553"

    def check(self) -> None:
        """Raise ``ConfigError`` naming the file, line, parameter and field if it cannot be used."""
        where = _where(self.origin, self.name)
        _in_range(where, "channel", self.channel, 1, 0xFFFF)
        _in_range(where, "rt", self.rt, 0, 31)
        if self.tr not in ("T", "R"):
            raise ConfigError(f"{where}: field 'tr': {self.tr!r} is not T or R")
        _in_range(where, "subaddress", self.subaddress, 0, 31)
        if self.word_count is not None:
            _in_range(where, "word_count", self.word_count, 1, 32)
        if not self.fragments:
            raise ConfigError(f"{where}: field 'word': no data word given")
        for f in self.fragments:
            _in_range(where, "word", f.word, 1, self.word_count or 32)
            _in_range(where, "msb", f.msb, 1, 16)
            _in_range(where, "lsb", f.lsb, f.msb, 16)
        if self.encoding not in BUS_1553_ENCODINGS:
            raise ConfigError(f"{where}: field 'encoding': {self.encoding!r} is not one of {BUS_1553_ENCODINGS}")
        bits = sum(f.bits for f in self.fragments)
        if self.encoding == "float" and bits not in (16, 32, 64):
            raise ConfigError(f"{where}: field 'encoding': float needs 16, 32 or 64 bits, the words give {bits}")
        if bits > 64 or len(self.fragments) > 4:
            raise ConfigError(f"{where}: field 'word': at most 4 words and 64 bits")

    @property
    def key(self) -> int:
        """The message key: RT address, T/R bit and subaddress as in the command word (11 bits)."""
        return (self.rt << 6) | ((self.tr == "T") << 5) | self.subaddress

    @property
    def last_word(self) -> int:
        return max(f.word for f in self.fragments)

    def as_slot_parameter(self) -> Parameter:
        return Parameter(self.name, tuple(Fragment(f.word, f.mask) for f in self.fragments), self.encoding,
                         calibration=self.calibration, units=self.units, limits=self.limits, group=self.group,
                         description=self.description)


@dataclass(frozen=True)
class Parameter429:
    """A measurand in ARINC-429 words of one channel."""

    name: str
    channel: int
    label: int  # the label's value (written in octal: 0o203 for label 203)
    msb: int = 29
    lsb: int = 11
    encoding: str = "bnr"
    bus: int | None = None  # bus (sub-channel) number of the intra-packet header; None: any
    sdi: int | None = None  # None: any SDI
    ssm: str | None = None  # sign/status matrix that marks samples invalid; None: by encoding
    calibration: Calibration = field(default_factory=Calibration)
    units: str = ""
    limits: Limits = field(default_factory=Limits)
    group: str = ""
    description: str = ""
    origin: str = ""

    kind = "429"

    def check(self) -> None:
        """Raise ``ConfigError`` naming the file, line, parameter and field if it cannot be used."""
        where = _where(self.origin, self.name)
        _in_range(where, "channel", self.channel, 1, 0xFFFF)
        _in_range(where, "label", self.label, 0, 255)
        if self.bus is not None:
            _in_range(where, "bus", self.bus, 0, 255)
        if self.sdi is not None:
            _in_range(where, "sdi", self.sdi, 0, 3)
        if self.encoding not in ARINC_ENCODINGS:
            raise ConfigError(f"{where}: field 'encoding': {self.encoding!r} is not one of {ARINC_ENCODINGS}")
        _in_range(where, "lsb", self.lsb, 1, 32)
        _in_range(where, "msb", self.msb, self.lsb, 32)
        if self.encoding == "bnr" and (self.msb not in (28, 29) or self.lsb > 28):
            raise ConfigError(f"{where}: field 'msb': BNR data runs from bit 28 (the sign is bit 29) down to lsb;"
                              f" got bits {self.msb}..{self.lsb}")
        if self.ssm is not None and self.ssm not in SSM_RULES:
            raise ConfigError(f"{where}: field 'ssm': {self.ssm!r} is not one of {SSM_RULES}")

    @property
    def ssm_rule(self) -> str:
        return self.ssm or _DEFAULT_SSM[self.encoding]

    @property
    def field_bits(self) -> tuple[int, int]:
        """(msb, lsb) of the bits read: BNR always includes its sign bit 29."""
        return (29 if self.encoding == "bnr" else self.msb), self.lsb

    def as_slot_parameter(self) -> Parameter:
        """Over ``FRAME_429``. BCD reads as unsigned bits here; its digits are decoded by the extractor."""
        msb, lsb = self.field_bits
        mask = ((1 << msb) - 1) & ~((1 << (lsb - 1)) - 1)
        enc = "signed" if self.encoding in ("bnr", "signed") else "unsigned"
        return Parameter(self.name, (Fragment(1, mask),), enc, calibration=self.calibration, units=self.units,
                         limits=self.limits, group=self.group, description=self.description)


def _in_range(where: str, what: str, value: object, lo: int, hi: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise ConfigError(f"{where}: field {what!r}: {value!r} outside {lo}..{hi}")
