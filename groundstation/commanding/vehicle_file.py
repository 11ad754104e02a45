"""A vehicle's commands and verifier from its vehicle database file (``[[command]]``, ``[verifier]``).

The paramdb loaders read the file (``telemetry_formats.paramdb.load_mission``); this
module gives the tables their meaning: ``CommandDef``/``ArgSpec``/``EffectCheck`` and
the ``EchoSpec``. The simulated test vehicle's file is ``groundstation/simulator/vehicle.toml``.
Errors name the file, the command and the field. Documented in docs/commanding.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from telemetry_formats.paramdb import ConfigError, MissionDatabase, load_mission_file

from .definitions import ArgSpec, CommandDef, EffectCheck, Value, index_definitions
from .echo import EchoSpec

__all__ = ["SIMULATED_VEHICLE_FILE", "VEHICLE_COMMANDS", "VEHICLE_RESULTS", "VehicleCommanding", "commanding_from",
           "simulated_vehicle", "vehicle_commands"]

SIMULATED_VEHICLE_FILE = Path(__file__).resolve().parents[1] / "simulator" / "vehicle.toml"
_COMMAND_KEYS = {"name", "opcode", "args", "hazardous", "description", "echo", "effect", "timeout_ack_s",
                 "timeout_complete_s"}
_ARG_KEYS = {"name", "kind", "min", "max", "choices", "units", "description"}
_EFFECT_KEYS = {"param", "param_by", "params", "expect", "scale", "offset", "round", "tolerance", "describe"}


@dataclass(frozen=True)
class VehicleCommanding:
    """A vehicle's command definitions and how its telemetry verifies them."""

    commands: tuple[CommandDef, ...]
    echo: EchoSpec

    def telemetry_names(self) -> tuple[str, ...]:
        """Every downlink parameter verification reads: the echo words and each effect's parameters."""
        names = list(self.echo.names)
        for d in self.commands:
            if d.effect is not None:
                names += [n for n in d.effect.names() if n not in names]
        return tuple(names)


def _unknown(where: str, table: Mapping[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(table) - allowed)
    if extra:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(map(repr, extra))} (allowed: {', '.join(sorted(allowed))})")


def _effect(where: str, table: Mapping[str, Any], args: tuple[ArgSpec, ...]) -> EffectCheck:
    """``param`` (or ``param_by`` an enum argument whose code indexes ``params``) == round?(``expect`` argument
    * ``scale`` + ``offset``) within ``tolerance``."""
    where = f"{where}: field 'effect'"
    _unknown(where, table, _EFFECT_KEYS)
    names = {a.name for a in args}
    expect = table.get("expect")
    if expect not in names:
        raise ConfigError(f"{where}: 'expect' must name an argument ({', '.join(sorted(names)) or 'none'}),"
                          f" got {expect!r}")
    scale, offset, rounded = float(table.get("scale", 1.0)), float(table.get("offset", 0.0)), bool(table.get("round"))

    def expected(a: Mapping[str, Value]) -> Value:
        v = a[expect] * scale + offset if (scale, offset) != (1.0, 0.0) else a[expect]
        return round(v) if rounded else v

    if "param_by" in table:
        by, params = table["param_by"], table.get("params")
        spec = next((a for a in args if a.name == by), None)
        if spec is None or spec.kind != "enum":
            raise ConfigError(f"{where}: 'param_by' must name an enum argument, got {by!r}")
        if not isinstance(params, list) or not all(isinstance(p, str) for p in params) \
                or max(spec.choices.values()) >= len(params):
            raise ConfigError(f"{where}: 'params' must list a parameter name for each code of {by!r}")
        names_by_code = tuple(params)
        return EffectCheck(lambda a: names_by_code[int(a[by])], expected, float(table.get("tolerance", 0.0)),
                           str(table.get("describe", "")), watches=names_by_code)
    if not isinstance(table.get("param"), str) or not table["param"]:
        raise ConfigError(f"{where}: give 'param' (a parameter name) or 'param_by' with 'params'")
    return EffectCheck(table["param"], expected, float(table.get("tolerance", 0.0)), str(table.get("describe", "")),
                       linear=(table["param"], expect, scale, offset))


def _command(origin: str, table: Mapping[str, Any]) -> CommandDef:
    where = f"{origin}: command {table.get('name')!r}"
    try:
        _unknown(where, table, _COMMAND_KEYS)
        args = []
        for a in table.get("args", []) or []:
            if not isinstance(a, Mapping):
                raise ConfigError(f"{where}: field 'args': expected tables of name, kind, min, max, choices")
            _unknown(f"{where}: argument {a.get('name')!r}", a, _ARG_KEYS)
            args.append(ArgSpec(str(a.get("name", "")), a.get("kind"), a.get("min"), a.get("max"), a.get("choices"),
                                str(a.get("units", "")), str(a.get("description", ""))))
        args_t = tuple(args)
        opcode = table.get("opcode")
        if isinstance(opcode, int) and not 0 < opcode <= 255:
            raise ConfigError(f"{where}: field 'opcode': {opcode} outside 1..255 (the uplink packet's opcode byte)")
        effect = table.get("effect")
        return CommandDef(
            str(table["name"]), opcode, args_t, bool(table.get("hazardous", False)),
            str(table.get("description", "")), bool(table.get("echo", True)),
            _effect(where, effect, args_t) if effect else None,
            float(table.get("timeout_ack_s", 2.0)), float(table.get("timeout_complete_s", 10.0)))
    except (ValueError, TypeError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{where}: {exc}") from None


def _echo(origin: str, table: Mapping[str, Any]) -> EchoSpec:
    where = f"{origin}: [verifier]"
    _unknown(where, table, {"count", "last_opcode", "result", "accepted", "results"})
    missing = [k for k in ("count", "last_opcode", "result") if not isinstance(table.get(k), str)]
    if missing:
        raise ConfigError(f"{where}: give the parameter name(s) {', '.join(missing)}")
    results = {}
    for code, entry in (table.get("results") or {}).items():
        if not (isinstance(entry, list) and len(entry) == 2 and all(isinstance(x, str) for x in entry)):
            raise ConfigError(f"{where}: results.{code}: expected [code, what it means]")
        try:
            results[int(code)] = (entry[0], entry[1])
        except ValueError:
            raise ConfigError(f"{where}: results: {code!r} is not a result code") from None
    return EchoSpec(table["count"], table["last_opcode"], table["result"], int(table.get("accepted", 1)), results)


def commanding_from(mission: MissionDatabase) -> VehicleCommanding | None:
    """The commands and verifier of a mission database (None if it defines no commands)."""
    if not mission.commands:
        return None
    commands = tuple(_command(origin, t) for origin, t in mission.commands)
    try:
        index_definitions(commands)
    except ValueError as exc:
        raise ConfigError(f"{', '.join(sorted({o for o, _ in mission.commands}))}: {exc}") from None
    if mission.verifier is None:
        if any(d.echo for d in commands):
            raise ConfigError(f"{mission.commands[0][0]}: commands with an echo need a [verifier] table")
        return VehicleCommanding(commands, EchoSpec("", "", ""))
    return VehicleCommanding(commands, _echo(*mission.verifier))


@lru_cache(maxsize=1)
def simulated_vehicle() -> VehicleCommanding:
    """The simulated test vehicle's commands and verifier (``SIMULATED_VEHICLE_FILE``)."""
    found = commanding_from(load_mission_file(SIMULATED_VEHICLE_FILE))
    assert found is not None, "the simulated vehicle's file defines its commands"
    return found


def vehicle_commands() -> dict[str, CommandDef]:
    """The simulated vehicle's commands by name."""
    return index_definitions(simulated_vehicle().commands)


VEHICLE_COMMANDS: tuple[CommandDef, ...] = simulated_vehicle().commands
VEHICLE_RESULTS: Mapping[int, tuple[str, str]] = simulated_vehicle().echo.results  # result codes other than accepted
