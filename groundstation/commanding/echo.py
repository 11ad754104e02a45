"""Reading the vehicle's echo words: did it take the command in flight?"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["VEHICLE_RESULTS", "read_echo"]

# CMD_RESULT codes the vehicle echoes, other than 1 (accepted): (code, what it means).
VEHICLE_RESULTS = {2: ("vehicle_rejected", "the vehicle rejected the command"),
                   3: ("bad_crc", "the vehicle reports a bad packet (CRC or format)"),
                   4: ("stale_sequence", "the vehicle reports a stale sequence number")}


def _int(latest: Mapping[str, float], name: str) -> int | None:
    v = latest.get(name)
    return None if v is None else int(round(v))


def read_echo(latest: Mapping[str, float], base_count: int | None, base_result: int | None, opcode: int,
              modulus: int) -> tuple[tuple[str, str] | None, str]:
    """The vehicle's answer from CMD_COUNT/CMD_RESULT/CMD_LAST_OPCODE: (None, note) while there is
    none yet, (("ack", ""), "") on acceptance, or ((code, detail), "") on a failure it reports."""
    count, result, last_op = _int(latest, "CMD_COUNT"), _int(latest, "CMD_RESULT"), _int(latest, "CMD_LAST_OPCODE")
    step = (count - base_count) % modulus if None not in (count, base_count) else 0
    advanced = 0 < step < modulus // 2
    if advanced and result == 1 and last_op == opcode:
        return ("ack", ""), ""
    if result in VEHICLE_RESULTS and (advanced or result != base_result):
        code, what = VEHICLE_RESULTS[result]
        return (code, f"{what} (CMD_RESULT {result}, CMD_LAST_OPCODE {last_op}, CMD_COUNT {count})"), ""
    if advanced:
        return None, (f"; CMD_COUNT advanced to {count} but CMD_LAST_OPCODE is {last_op} and CMD_RESULT"
                      f" {result} (expected opcode {opcode} and result 1)")
    return None, ""
