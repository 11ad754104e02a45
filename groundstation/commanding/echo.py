"""Reading the vehicle's echo words: did it take the command in flight?"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["EchoSpec", "read_echo"]


@dataclass(frozen=True)
class EchoSpec:
    """How a vehicle echoes uplink packets in its telemetry (a vehicle database file's ``[verifier]``).

    ``count``, ``last_opcode`` and ``result`` are downlink parameter names: the packets
    received (modulo the service's count modulus), the last opcode, and the result code,
    ``accepted`` when the vehicle applied the command; ``results`` names the other codes
    as ``(code, what it means)``.
    """

    count: str
    last_opcode: str
    result: str
    accepted: int = 1
    results: Mapping[int, tuple[str, str]] = field(default_factory=dict)

    @property
    def names(self) -> tuple[str, str, str]:
        return self.count, self.last_opcode, self.result


def _int(latest: Mapping[str, float], name: str) -> int | None:
    v = latest.get(name)
    return None if v is None else int(round(v))


def read_echo(latest: Mapping[str, float], base_count: int | None, base_result: int | None, opcode: int,
              modulus: int, spec: EchoSpec) -> tuple[tuple[str, str] | None, str]:
    """The vehicle's answer from its echo parameters: (None, note) while there is none yet,
    (("ack", ""), "") on acceptance, or ((code, detail), "") on a failure it reports."""
    count, result, last_op = _int(latest, spec.count), _int(latest, spec.result), _int(latest, spec.last_opcode)
    step = (count - base_count) % modulus if None not in (count, base_count) else 0
    advanced = 0 < step < modulus // 2
    if advanced and result == spec.accepted and last_op == opcode:
        return ("ack", ""), ""
    if result in spec.results and (advanced or result != base_result):
        code, what = spec.results[result]
        return (code, f"{what} ({spec.result} {result}, {spec.last_opcode} {last_op}, {spec.count} {count})"), ""
    if advanced:
        return None, (f"; {spec.count} advanced to {count} but {spec.last_opcode} is {last_op} and {spec.result}"
                      f" {result} (expected opcode {opcode} and result {spec.accepted})")
    return None, ""
