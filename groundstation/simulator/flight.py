"""The simulated test vehicle: its PCM map and a deterministic flight.

``vehicle_database`` is the PCM format the vehicle announces in its TMATS.
``FlightModel.values`` gives every parameter's engineering value as a pure,
vectorized function of time (seconds since the start of the flight), so tests
can check what a console shows against the known truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from telemetry_formats.paramdb import (
    Calibration,
    Fragment,
    FrameFormat,
    Limits,
    Parameter,
    ParameterDatabase,
    Sfid,
)

from .excursions import KINDS, ExcursionSchedule

__all__ = ["vehicle_database", "SAMPLES_PER_FRAME", "FlightModel", "Spike", "STATUS_PARAMETERS", "SYNC", "WORDS_PER_MINOR"]

SYNC = 0xFE6B2840
WORDS_PER_MINOR = 64
MINOR_FRAMES = 16
# Words 14..20, 27 and 28 echo the vehicle's command state (see Vehicle.status_words).
STATUS_PARAMETERS = ("CMD_COUNT", "CMD_LAST_OPCODE", "CMD_RESULT", "BITRATE_KBPS", "TEST_POINT", "SYSTEM",
                     "FAULT", "FC_SPF", "VIB_SPF")
SAMPLES_PER_FRAME = (1, 2, 4)  # the choices for the fast groups' supercommutation
_INTERVAL = {1: 0, 2: 32, 4: 16}  # word interval giving that many samples in 63 data words


def _p(name, word, c1, *, c0=0.0, signed=False, units="", group="", wi=0, fp=None, fi=0, desc="", enum=(), **lim):
    return Parameter(
        name=name,
        fragments=(Fragment(word),),
        encoding="signed" if signed else "unsigned",
        word_interval=wi,
        frame_position=fp,
        frame_interval=fi,
        calibration=Calibration(polynomial=(c0, c1)),
        units=units,
        limits=Limits(**lim),
        group=group,
        description=desc,
        enum=enum,
    )


def vehicle_parameters(fc_spf: int = 2, vib_spf: int = 4) -> list[Parameter]:
    """The vehicle's measurements: supercommutated fast ones, subcommutated slow ones.

    ``fc_spf`` and ``vib_spf`` are the samples per minor frame of the flight
    control rates and of the vibration channel (1, 2 or 4): an uplink command
    changes them, and the vehicle announces the new map in its TMATS.
    """
    if fc_spf not in SAMPLES_PER_FRAME or vib_spf not in SAMPLES_PER_FRAME:
        raise ValueError(f"samples per frame must be one of {SAMPLES_PER_FRAME}")
    fc, vib = _INTERVAL[fc_spf], _INTERVAL[vib_spf]
    return [
        _p("ALT", 2, 1.0, c0=-2000.0, units="ft", group="air data", desc="pressure altitude",
           warning_high=45000.0, critical_high=50000.0),
        _p("IAS", 3, 0.01, units="kt", group="air data", desc="indicated airspeed",
           warning_high=450.0, critical_high=500.0),
        _p("MACH", 4, 0.0001, group="air data", desc="Mach number", warning_high=0.9, critical_high=0.95),
        _p("AOA", 5, 0.01, signed=True, units="deg", group="air data", desc="angle of attack",
           warning_high=15.0, critical_high=20.0, warning_low=-5.0, critical_low=-8.0),
        _p("PITCH_RATE", 6, 0.01, signed=True, units="deg/s", group="flight controls", wi=fc,
           warning_high=40.0, warning_low=-40.0),
        _p("ROLL_RATE", 7, 0.01, signed=True, units="deg/s", group="flight controls", wi=fc,
           warning_high=90.0, warning_low=-90.0),
        _p("YAW_RATE", 8, 0.01, signed=True, units="deg/s", group="flight controls", wi=fc,
           warning_high=20.0, warning_low=-20.0),
        _p("NZ", 9, 0.001, signed=True, units="g", group="flight controls", desc="normal acceleration",
           warning_high=4.0, critical_high=6.0, warning_low=-1.0, critical_low=-2.5),
        _p("N1", 10, 0.01, units="%", group="propulsion", desc="fan speed", warning_high=102.0, critical_high=105.0),
        _p("N2", 11, 0.01, units="%", group="propulsion", desc="core speed", warning_high=103.0, critical_high=106.0),
        _p("EGT", 12, 0.1, units="degC", group="propulsion", fp=1, fi=4, desc="exhaust gas temperature",
           warning_high=850.0, critical_high=950.0),
        _p("FUEL_FLOW", 12, 1.0, units="kg/h", group="propulsion", fp=2, fi=4),
        _p("HYD_PRESS", 12, 0.1, units="psi", group="hydraulics", fp=3, fi=4, warning_low=2800.0,
           critical_low=2500.0, warning_high=3200.0, critical_high=3400.0),
        _p("OIL_TEMP", 12, 0.01, c0=-40.0, units="degC", group="propulsion", fp=4, fi=4,
           warning_high=120.0, critical_high=140.0),
        _p("VIB", 13, 0.001, signed=True, units="g", group="structures", wi=vib, desc="airframe vibration",
           warning_high=3.0, critical_high=5.0, warning_low=-3.0, critical_low=-5.0),
        _p("CMD_COUNT", 14, 1.0, group="status", desc="uplink packets received (good or bad)"),
        _p("CMD_LAST_OPCODE", 15, 1.0, group="status"),
        _p("CMD_RESULT", 16, 1.0, group="status", desc="0 none, 1 applied, 2 rejected, 3 bad packet, 4 stale sequence",
           enum=((0, "none"), (1, "applied"), (2, "rejected"), (3, "bad packet"), (4, "stale sequence"))),
        _p("BITRATE_KBPS", 17, 1.0, units="kb/s", group="status", desc="PCM bit rate in use"),
        _p("TEST_POINT", 18, 1.0, group="status"),
        _p("SYSTEM", 19, 1.0, group="status", desc="0 primary, 1 backup", enum=((0, "primary"), (1, "backup"))),
        _p("FAULT", 20, 1.0, group="status", desc="injected fault code", warning_high=0.5),
        _p("FC_SPF", 27, 1.0, group="status", desc="flight control rates: samples per minor frame"),
        _p("VIB_SPF", 28, 1.0, group="status", desc="vibration: samples per minor frame"),
        Parameter("LAT", (Fragment(30), Fragment(31)), encoding="float", units="deg", group="navigation"),
        Parameter("LON", (Fragment(32), Fragment(33)), encoding="float", units="deg", group="navigation"),
        _p("HEADING", 25, 0.01, units="deg", group="navigation"),
        _p("OAT", 26, 0.01, signed=True, units="degC", group="air data", fp=1, fi=16, desc="outside air temp"),
        _p("FUEL_QTY", 26, 1.0, units="kg", group="propulsion", fp=9, fi=16),
    ]


def vehicle_database(bit_rate: float = 1_000_000, fc_spf: int = 2, vib_spf: int = 4) -> ParameterDatabase:
    """The vehicle's PCM format at ``bit_rate``: 64 x 16-bit words, 16 minor frames."""
    frame = FrameFormat(
        name="FTV-1",
        words_per_minor=WORDS_PER_MINOR,
        word_length=16,
        sync_pattern=SYNC,
        sync_length=32,
        minor_frames=MINOR_FRAMES,
        bit_rate=float(bit_rate),
        sfid=Sfid(word=1, first_count=0),
    )
    return ParameterDatabase(frame=frame, parameters=vehicle_parameters(fc_spf, vib_spf), source="simulator")


@dataclass(frozen=True)
class Spike:
    """Replace one parameter's value by ``value`` at the sample nearest ``t_s``."""

    name: str
    t_s: float
    value: float


def _s(t: np.ndarray, period: float, amp: float, phase: float = 0.0) -> np.ndarray:
    return amp * np.sin(2 * np.pi * t / period + phase)


@dataclass
class FlightModel:
    """A 20-minute test sortie, repeating: climb, cruise with manoeuvres, descent."""

    seed: int = 0
    spikes: list[Spike] = field(default_factory=list)
    fault: int = 0  # injected fault: 0 none, 1 EGT overtemperature, 2 hydraulic loss, 3 vibration
    excursions: ExcursionSchedule | None = None  # limit excursions by itself (demo --events)

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        self.phase = rng.uniform(0, 2 * np.pi, 16)

    def values(self, name: str, t: np.ndarray, neighbours: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """Engineering values of ``name`` at times ``t`` (s since start).

        A spike replaces the sample nearest its time (if within 0.5 s): without
        ``neighbours``, the nearest of ``t``; with ``neighbours`` (the times of the
        previous and next sample of each sample in the stream, shaped like ``t``),
        the nearest of the whole stream, however the stream is cut into calls.
        """
        t = np.asarray(t, dtype=np.float64)
        f = getattr(self, f"_{name.lower()}", None)
        out = np.asarray(f(t) if f else np.zeros_like(t), dtype=np.float64)
        out = np.broadcast_to(out, t.shape).copy()
        if self.excursions is not None and name in KINDS:
            out = self.excursions.apply(name, t, out)
        for sp in self.spikes:
            if sp.name != name or not t.size:
                continue
            d = np.abs(t - sp.t_s)
            if neighbours is None:
                hit = np.zeros(t.shape, bool)
                hit.flat[int(np.argmin(d))] = True
            else:
                prev, nxt = neighbours
                hit = (d < np.abs(prev - sp.t_s)) & (d <= np.abs(nxt - sp.t_s))
            out[hit & (d < 0.5)] = sp.value
        return out

    # -- the flight -------------------------------------------------------
    def _alt(self, t):
        climb = np.clip(t % 1200 / 600, 0, 1)
        return 500 + 29500 * (0.5 - 0.5 * np.cos(np.pi * climb)) + _s(t, 37, 40, self.phase[0])

    def _ias(self, t):
        return 280 + _s(t, 300, 30, self.phase[1]) + _s(t, 7.3, 1.5, self.phase[2])

    def _mach(self, t):
        tas = self._ias(t) * (1 + 0.02 * self._alt(t) / 1000)
        return tas / 661.5

    def _aoa(self, t):
        return 3.0 + _s(t, 23, 2.0, self.phase[3]) + 4.0 * self._doublet(t)

    def _doublet(self, t):
        """A pitch doublet every 60 s: +1 for 1 s then -1 for 1 s."""
        x = t % 60
        return np.where((x >= 30) & (x < 31), 1.0, np.where((x >= 31) & (x < 32), -1.0, 0.0))

    def _pitch_rate(self, t):
        return _s(t, 11, 3.0, self.phase[4]) + 15.0 * self._doublet(t)

    def _roll_rate(self, t):
        return _s(t, 17, 20.0, self.phase[5])

    def _yaw_rate(self, t):
        return _s(t, 13, 2.0, self.phase[6])

    def _nz(self, t):
        return 1.0 + _s(t, 9, 0.2, self.phase[7]) + 1.2 * self._doublet(t)

    def _n1(self, t):
        return 88 + _s(t, 120, 4, self.phase[8])

    def _n2(self, t):
        return 92 + _s(t, 120, 3, self.phase[8])

    def _egt(self, t):
        hot = 330.0 if self.fault == 1 else 0.0
        return 640 + 2.5 * (self._n1(t) - 88) * 10 + _s(t, 5, 3, self.phase[9]) + hot

    def _fuel_flow(self, t):
        return 2400 + 40 * (self._n1(t) - 88)

    def _hyd_press(self, t):
        return (2300 if self.fault == 2 else 3000) + _s(t, 3.1, 25, self.phase[10])

    def _oil_temp(self, t):
        return 85 + _s(t, 400, 6, self.phase[11])

    def _vib(self, t):
        gain = 6.0 if self.fault == 3 else 1.0
        return gain * (0.6 * np.sin(2 * np.pi * 160 * t + self.phase[12]) + 0.25 * np.sin(2 * np.pi * 1200 * t))

    def _lat(self, t):
        return 34.9 + 0.2 * np.sin(2 * np.pi * t / 1200)

    def _lon(self, t):
        return -117.9 + 0.2 * np.cos(2 * np.pi * t / 1200)

    def _heading(self, t):
        return (90 + 360 * t / 1200) % 360

    def _oat(self, t):
        return 15 - 1.98 * self._alt(t) / 1000

    def _fuel_qty(self, t):
        return np.maximum(6000 - 0.6 * t, 500)
