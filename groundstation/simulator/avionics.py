"""The mixed vehicle's avionics: what its air data computer, IRS and GPS measure.

``Avionics.values(name, t)`` gives the engineering value of every parameter of the
vehicle's ICD (``vehicle_icd.csv``) as a pure, vectorized function of time (seconds
since the start), derived from the same ``FlightModel`` as the PCM stream, so the
bus and PCM parameters agree where they measure the same thing: ``ADC_PALT`` is
``ALT``, ``ADC_CAS`` is ``IAS``, ``ADC_MACH`` is ``MACH``, ``ADC_AOA`` is ``AOA``,
``ADC_SAT`` is ``OAT``, ``NAV_LAT``/``NAV_LON`` are ``LAT``/``LON``, ``NAV_HDG`` is
``HEADING`` (as ARINC BNR: -180..180), and the IRS pitch and roll angles are the
integrals of the PCM ``PITCH_RATE`` and ``ROLL_RATE``. ``valid`` says when the
IRS outputs are computed (not during its alignment at power-up).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .flight import FlightModel

__all__ = ["Avionics", "P0_HPA", "A0_KT", "IRS_NAV_LABELS"]

P0_HPA = 1013.25  # ISA sea-level pressure
A0_KT = 661.47  # ISA sea-level speed of sound
WIND_KT, WIND_FROM_DEG = 20.0, 270.0  # a steady westerly
# IRS outputs that are "no computed data" until the alignment is complete.
IRS_NAV_LABELS = ("NAV_LAT", "NAV_LON", "NAV_GS", "NAV_TRACK", "NAV_HDG", "NAV_PITCH", "NAV_ROLL")


def _wrap180(deg: np.ndarray) -> np.ndarray:
    return (np.asarray(deg) + 180.0) % 360.0 - 180.0


def _triangle(t: np.ndarray) -> np.ndarray:
    """The integral of the flight model's pitch doublet (+1 for 1 s, -1 for 1 s, every 60 s)."""
    x = t % 60
    return np.where((x >= 30) & (x < 31), x - 30, np.where((x >= 31) & (x < 32), 32 - x, 0.0))


@dataclass
class Avionics:
    """The ADC, IRS and GPS of the vehicle, over its flight model."""

    model: FlightModel
    irs_align_s: float = 5.0  # IRS alignment after power-up: navigation outputs are "no computed data"
    baro_setting_hpa: float = 1013.2  # what the bus controller sends the ADC

    def valid(self, name: str, t: np.ndarray) -> np.ndarray:
        """True where ``name`` is computed at ``t`` (False: its word goes out with SSM no computed data)."""
        t = np.asarray(t, dtype=np.float64)
        if name in IRS_NAV_LABELS:
            return t >= self.irs_align_s
        return np.ones(t.shape, bool)

    def values(self, name: str, t: np.ndarray) -> np.ndarray:
        """Engineering values of the ICD parameter ``name`` at times ``t`` (s since start)."""
        t = np.asarray(t, dtype=np.float64)
        f = getattr(self, f"_{name.lower()}", None)
        if f is None:
            raise KeyError(f"the vehicle's avionics do not produce {name!r}")
        return np.broadcast_to(np.asarray(f(t), dtype=np.float64), t.shape).copy()

    def _m(self, name: str, t: np.ndarray) -> np.ndarray:
        return self.model.values(name, t)

    # -- air data computer (1553 RT 1) ----------------------------------------------
    def _adc_palt(self, t):
        return self._m("ALT", t)

    def _adc_cas(self, t):
        return self._m("IAS", t)

    def _adc_tas(self, t):
        return self._m("IAS", t) * (1 + 0.02 * self._m("ALT", t) / 1000)  # as the flight model's Mach

    def _adc_mach(self, t):
        return self._m("MACH", t)

    def _adc_alt_rate(self, t):
        h = 0.01
        t = np.maximum(t, h)  # the flight starts at t = 0: no rate from before it
        return (self._m("ALT", t + h) - self._m("ALT", t - h)) / (2 * h) * 60.0

    def _adc_sat(self, t):
        return self._m("OAT", t)

    def _adc_tat(self, t):
        return (self._adc_sat(t) + 273.15) * (1 + 0.2 * self._adc_mach(t) ** 2) - 273.15

    def _adc_aoa(self, t):
        return self._m("AOA", t)

    def _adc_aos(self, t):
        return 0.8 * np.sin(2 * np.pi * t / 13 + self.model.phase[6] + np.pi / 2)

    def _adc_qc(self, t):
        return P0_HPA * ((1 + 0.2 * (self._adc_cas(t) / A0_KT) ** 2) ** 3.5 - 1)

    def _adc_valid(self, t):
        return np.ones_like(t)

    def _adc_pitot_heat(self, t):
        return np.ones_like(t)

    def _adc_baro_set(self, t):
        return np.full_like(t, self.baro_setting_hpa)

    # -- IRS (ARINC-429 bus 0) ---------------------------------------------------------
    def _nav_lat(self, t):
        return self._m("LAT", t)

    def _nav_lon(self, t):
        return self._m("LON", t)

    def _wind(self, t):
        """(along-track, cross-track) wind components in kt at the vehicle's heading."""
        rel = np.radians(self._m("HEADING", t) - (WIND_FROM_DEG + 180.0))
        return WIND_KT * np.cos(rel), WIND_KT * np.sin(rel)

    def _nav_gs(self, t):
        along, _ = self._wind(t)
        return self._adc_tas(t) + along

    def _nav_track(self, t):
        _, cross = self._wind(t)
        return _wrap180(self._m("HEADING", t) + np.degrees(np.arcsin(cross / self._adc_tas(t))))

    def _nav_hdg(self, t):
        return _wrap180(self._m("HEADING", t))

    def _nav_pitch(self, t):
        # PITCH_RATE = 3 sin(2 pi t / 11 + phase) + 15 doublet: its integral, about a 2 deg trim.
        return 2.0 - 3.0 * 11 / (2 * np.pi) * np.cos(2 * np.pi * t / 11 + self.model.phase[4]) + 15.0 * _triangle(t)

    def _nav_roll(self, t):
        # ROLL_RATE = 20 sin(2 pi t / 17 + phase): its integral.
        return -20.0 * 17 / (2 * np.pi) * np.cos(2 * np.pi * t / 17 + self.model.phase[5])

    def _nav_align(self, t):
        return (t < self.irs_align_s).astype(np.float64)

    def _nav_nav_mode(self, t):
        return (t >= self.irs_align_s).astype(np.float64)

    def _nav_att_mode(self, t):
        return np.zeros_like(t)

    # -- GPS (ARINC-429 bus 1) -----------------------------------------------------------
    def _gps_gs_bcd(self, t):
        return self._nav_gs(t)
