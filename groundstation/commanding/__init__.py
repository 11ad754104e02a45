"""Commanding (sans-I/O): command definitions, command authority, arm/execute, the uplink queue, verification.

The WebSocket/HTTP handlers and the UDP sender only move requests, packets and
telemetry between the world and :class:`CommandService`.
"""

from .authority import Authority, AuthorityRefused, Holder
from .definitions import (
    VEHICLE_COMMANDS,
    ArgSpec,
    CommandDef,
    CommandRejected,
    EffectCheck,
    check_args,
    definitions_as_wire,
    validate,
    vehicle_commands,
)
from .history import CommandRecord, History, State
from .service import Arm, CommandService, Release

__all__ = ["VEHICLE_COMMANDS", "ArgSpec", "Arm", "Authority", "AuthorityRefused", "CommandDef", "CommandRecord",
           "CommandRejected", "CommandService", "EffectCheck", "History", "Holder", "Release", "State", "check_args",
           "definitions_as_wire", "validate", "vehicle_commands"]
