"""Commanding (sans-I/O): command definitions, command authority, arm/execute, the uplink queue, verification.

The WebSocket/HTTP handlers and the UDP sender only move requests, packets and
telemetry between the world and :class:`CommandService`.
"""

from .authority import Authority, AuthorityRefused, Holder
from .definitions import (
    ArgSpec,
    CommandDef,
    CommandRejected,
    EffectCheck,
    check_args,
    definitions_as_wire,
    validate,
)
from .echo import EchoSpec
from .history import CommandRecord, History, State
from .service import Arm, CommandService, Release
from .vehicle_file import VEHICLE_COMMANDS, VehicleCommanding, commanding_from, simulated_vehicle, vehicle_commands

__all__ = ["VEHICLE_COMMANDS", "ArgSpec", "Arm", "Authority", "AuthorityRefused", "CommandDef", "CommandRecord",
           "CommandRejected", "CommandService", "EchoSpec", "EffectCheck", "History", "Holder", "Release", "State",
           "VehicleCommanding", "check_args", "commanding_from", "definitions_as_wire", "simulated_vehicle", "validate",
           "vehicle_commands"]
