"""Command definitions as data: name, opcode, typed arguments with ranges or choices, how to verify.

The service validates against a :class:`CommandDef`, the consoles build their forms
from :func:`definitions_as_wire`, and the verifier reads its echo flag and
:class:`EffectCheck`. A vehicle's set is data in its vehicle database file
(``vehicle_file``); ``VEHICLE_COMMANDS`` is the simulated test vehicle's.
A refusal is a :class:`CommandRejected` whose message names the argument and what
is allowed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, NoReturn

__all__ = ["ArgKind", "ArgSpec", "CommandDef", "CommandRejected", "EffectCheck", "Value", "check_args",
           "definitions_as_wire", "display_args", "index_definitions", "validate"]

ArgKind = Literal["u32", "i32", "f32", "enum"]
Value = int | float

F32_MAX = 3.4028234663852886e38
_NATURAL: dict[str, tuple[Value, Value]] = {
    "u32": (0, 2**32 - 1), "i32": (-(2**31), 2**31 - 1), "f32": (-F32_MAX, F32_MAX), "enum": (0, 2**32 - 1)}


class CommandRejected(Exception):
    """A command refused before it reached the vehicle.

    ``code`` is a stable short name for programs and logs, ``message`` is for people;
    ``argument`` and ``allowed`` (range dict, choice names or argument names) are set
    when one argument is at fault.
    """

    def __init__(self, code: str, message: str, *, argument: str | None = None, allowed: Any = None) -> None:
        super().__init__(message)
        self.code, self.message, self.argument, self.allowed = code, message, argument, allowed

    def as_wire(self) -> dict:
        return {"code": self.code, "message": self.message, "argument": self.argument, "allowed": self.allowed}


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


@dataclass(frozen=True)
class ArgSpec:
    """One typed argument: ``u32``/``i32``/``f32`` within [min, max], or ``enum`` (a choice name -> its code).

    Missing bounds default to the type's own range; an enum goes on the wire as ``u32``.
    """

    name: str
    kind: ArgKind
    min: Value | None = None
    max: Value | None = None
    choices: Mapping[str, int] | None = None
    units: str = ""
    description: str = ""

    def __post_init__(self) -> None:
        if self.kind not in _NATURAL:
            raise ValueError(f"argument {self.name!r}: unknown kind {self.kind!r} (expected u32, i32, f32 or enum)")
        lo, hi = _NATURAL[self.kind]
        if self.kind == "enum":
            codes = list((self.choices or {}).values())
            if not codes or self.min is not None or self.max is not None:
                raise ValueError(f"argument {self.name!r}: an enum needs choices and no min/max")
            if len(set(codes)) != len(codes) or not all(isinstance(c, int) and lo <= c <= hi for c in codes):
                raise ValueError(f"argument {self.name!r}: enum codes must be distinct u32 integers")
            object.__setattr__(self, "choices", dict(self.choices))
            return
        if self.choices is not None:
            raise ValueError(f"argument {self.name!r}: only an enum has choices")
        object.__setattr__(self, "min", lo if self.min is None else self.min)
        object.__setattr__(self, "max", hi if self.max is None else self.max)
        integral = self.kind != "f32"
        if integral and not all(isinstance(b, int) for b in (self.min, self.max)):
            raise ValueError(f"argument {self.name!r}: {self.kind} bounds must be integers")
        if not lo <= self.min <= self.max <= hi:
            raise ValueError(f"argument {self.name!r}: bounds {self.min}..{self.max} outside {self.kind} {lo}..{hi}")

    @property
    def wire_kind(self) -> str:
        """The uplink codec's kind: ``u32``, ``i32`` or ``f32``."""
        return "u32" if self.kind == "enum" else self.kind

    def allowed(self) -> dict | list[str]:
        """``{"min", "max", "units"}`` or the choice names."""
        if self.kind == "enum":
            return list(self.choices)
        return {"min": self.min, "max": self.max, "units": self.units}

    def allowed_text(self) -> str:
        """``10000..20000000 b/s`` or ``one of 'primary', 'backup'``."""
        if self.kind == "enum":
            return "one of " + ", ".join(repr(c) for c in self.choices)
        return f"{self.min:g}..{self.max:g}{' ' + self.units if self.units else ''}" if self.kind == "f32" \
            else f"{self.min}..{self.max}{' ' + self.units if self.units else ''}"

    def check(self, command: str, value: object) -> Value:
        """The numeric value to send for ``value``; CommandRejected naming this argument and what it allows."""
        if self.kind == "enum":
            return self._check_enum(command, value)
        if not _is_number(value) or (isinstance(value, float) and not math.isfinite(value)):
            self._refuse(command, "wrong_type", f"must be a {'number' if self.kind == 'f32' else 'whole number'}"
                         f" ({self.kind}, {self.allowed_text()}), got {value!r}")
        if self.kind != "f32":
            if isinstance(value, float) and not value.is_integer():
                self._refuse(command, "wrong_type", f"must be a whole number ({self.kind}, {self.allowed_text()}),"
                             f" got {value!r}")
            value = int(value)
        else:
            value = float(value)
        if not self.min <= value <= self.max:
            self._refuse(command, "out_of_range", f"= {value!r} is out of range: allowed {self.allowed_text()}")
        return value

    def _check_enum(self, command: str, value: object) -> int:
        if isinstance(value, str) and value in self.choices:
            return self.choices[value]
        if isinstance(value, int) and not isinstance(value, bool) and value in self.choices.values():
            return value  # the code itself, e.g. from a script
        if not isinstance(value, str | int) or isinstance(value, bool):
            self._refuse(command, "wrong_type", f"must be {self.allowed_text()}, got {value!r}")
        self._refuse(command, "not_a_choice", f"= {value!r} is not {self.allowed_text()}")

    def name_of(self, code: Value) -> Value | str:
        """The choice name of an enum code (other kinds: the value itself)."""
        if self.kind != "enum":
            return code
        return next((n for n, c in self.choices.items() if c == code), code)

    def _refuse(self, command: str, code: str, what: str) -> NoReturn:
        raise CommandRejected(code, f"{command}: argument {self.name!r} {what}", argument=self.name,
                              allowed=self.allowed())

    def as_wire(self) -> dict:
        return {"name": self.name, "kind": self.kind, "min": self.min, "max": self.max,
                "choices": dict(self.choices) if self.choices else None, "units": self.units,
                "description": self.description, "allowed": self.allowed_text()}


@dataclass(frozen=True)
class EffectCheck:
    """What telemetry shows once the command took effect: ``param`` == ``expect(args)`` within ``tolerance``.

    ``param`` may itself depend on the arguments (a callable), e.g. which group's rate;
    both callables get the validated numeric arguments by name (enum -> its code).
    ``watches`` lists the parameters a callable ``param`` can name.
    """

    param: str | Callable[[Mapping[str, Value]], str]
    expect: Callable[[Mapping[str, Value]], Value]
    tolerance: float = 0.0
    describe: str = ""  # for people and consoles, e.g. "BITRATE_KBPS == round(bitrate/1000)"
    watches: tuple[str, ...] = ()
    # param == arg * scale + offset (a fixed param): consoles read the argument's current value from telemetry
    linear: tuple[str, str, float, float] | None = None  # (param, arg, scale, offset)

    def names(self) -> tuple[str, ...]:
        """The telemetry parameters this check may read."""
        return (self.param,) if isinstance(self.param, str) else tuple(self.watches)

    def parameter(self, args: Mapping[str, Value]) -> str:
        return self.param if isinstance(self.param, str) else self.param(args)

    def expected(self, args: Mapping[str, Value]) -> Value:
        return self.expect(args)

    def holds(self, args: Mapping[str, Value], telemetry: Mapping[str, float]) -> bool:
        """True once the effect parameter has been seen at its expected value."""
        seen = telemetry.get(self.parameter(args))
        return seen is not None and abs(seen - self.expected(args)) <= self.tolerance


@dataclass(frozen=True)
class CommandDef:
    """One command: opcode, arguments in wire order, hazard, and how the ground station verifies it.

    ``echo``: the vehicle echoes it (the verifier's count / last opcode / result words) and it is
    Acknowledged from that; ``effect``: what shows it Completed (none: complete on ack).
    """

    name: str
    opcode: int
    args: tuple[ArgSpec, ...] = ()
    hazardous: bool = False
    description: str = ""
    echo: bool = True
    effect: EffectCheck | None = None
    timeout_ack_s: float = 2.0
    timeout_complete_s: float = 10.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "args", tuple(self.args))
        names = [a.name for a in self.args]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name}: duplicate argument names {names}")
        if not isinstance(self.opcode, int) or isinstance(self.opcode, bool) or self.opcode <= 0:
            raise ValueError(f"{self.name}: opcode must be a positive integer (0 means 'no command' in the echo)")
        if self.timeout_ack_s <= 0 or self.timeout_complete_s <= 0:
            raise ValueError(f"{self.name}: timeouts must be positive")

    def arg(self, name: str) -> ArgSpec | None:
        return next((a for a in self.args if a.name == name), None)

    def as_wire(self) -> dict:
        return {"name": self.name, "opcode": self.opcode, "hazardous": self.hazardous,
                "description": self.description, "args": [a.as_wire() for a in self.args], "echo": self.echo,
                "effect": (self.effect.describe or "defined") if self.effect else None,
                "effect_value": (dict(zip(("param", "arg", "scale", "offset"), self.effect.linear))
                                 if self.effect and self.effect.linear else None),
                "timeout_ack_s": self.timeout_ack_s, "timeout_complete_s": self.timeout_complete_s}


def check_args(defn: CommandDef, raw_args: object) -> dict[str, Value]:
    """Validated numeric arguments by name, in wire order (enum -> code); CommandRejected naming the argument."""
    if raw_args is None:
        raw_args = {}
    if not isinstance(raw_args, Mapping):
        raise CommandRejected("bad_arguments", f"{defn.name}: arguments must be an object of name: value,"
                              f" got {type(raw_args).__name__}", allowed=[a.name for a in defn.args])
    expected = [a.name for a in defn.args]
    for key in raw_args:
        if key not in expected:
            listing = ", ".join(expected) if expected else "none"
            raise CommandRejected("unknown_argument", f"{defn.name}: unknown argument {key!r} (arguments: {listing})",
                                  argument=str(key), allowed=expected)
    values = {}
    for spec in defn.args:
        if spec.name not in raw_args:
            raise CommandRejected("missing_argument", f"{defn.name}: missing argument {spec.name!r}"
                                  f" ({spec.kind}, {spec.allowed_text()})", argument=spec.name, allowed=spec.allowed())
        values[spec.name] = spec.check(defn.name, raw_args[spec.name])
    return values


def validate(defn: CommandDef, raw_args: object) -> list[tuple[str, Value]]:
    """The arguments as the uplink codec takes them: ``[(kind, value), ...]`` in wire order."""
    values = check_args(defn, raw_args)
    return [(a.wire_kind, values[a.name]) for a in defn.args]


def display_args(defn: CommandDef, values: Mapping[str, Value]) -> dict[str, Value | str]:
    """Validated values for people and records: enum codes shown by their choice names."""
    return {a.name: a.name_of(values[a.name]) for a in defn.args if a.name in values}


def index_definitions(definitions: Iterable[CommandDef] | Mapping[str, CommandDef]) -> dict[str, CommandDef]:
    """Definitions by name; ValueError on a duplicate name or opcode."""
    defs = list(definitions.values() if isinstance(definitions, Mapping) else definitions)
    by_name = {d.name: d for d in defs}
    opcodes = [d.opcode for d in defs]
    if len(by_name) != len(defs) or len(set(opcodes)) != len(opcodes):
        raise ValueError("command definitions need distinct names and opcodes")
    return by_name


def definitions_as_wire(definitions: Iterable[CommandDef] | Mapping[str, CommandDef] | None = None) -> list[dict]:
    """What a console needs to build its command forms (defaults to the simulated vehicle's set)."""
    if definitions is None:
        from .vehicle_file import simulated_vehicle  # the vehicle file's loader builds on this module

        definitions = simulated_vehicle().commands
    return [d.as_wire() for d in index_definitions(definitions).values()]
