"""Command definitions and verifier telemetry as data in a vehicle database file."""

from __future__ import annotations

import textwrap

import pytest

from groundstation.auth import Principal, Role
from groundstation.commanding import (
    CommandService,
    State,
    check_args,
    commanding_from,
    simulated_vehicle,
)
from telemetry_formats.paramdb import ConfigError, load_mission, parse_mission_mapping

T0, S = 1_700_000_000_000_000_000, 1_000_000_000
ALICE = Principal(user="alice", role=Role.DIRECTOR, token_id="jti-alice", expires_at=1e12)

ROVER = textwrap.dedent('''
    [verifier]
    count = "UPLINK_RX"
    last_opcode = "UPLINK_OP"
    result = "UPLINK_STATUS"
    accepted = 10
    results = { 11 = ["refused", "the rover refused it"] }

    [[command]]
    name = "DRIVE"
    opcode = 7
    args = [{ name = "speed", kind = "f32", min = 0, max = 2.5, units = "m/s" },
            { name = "gear", kind = "enum", choices = { low = 0, high = 1 } }]
    timeout_ack_s = 1.5

    [command.effect]
    param_by = "gear"
    params = ["SPEED_LOW", "SPEED_HIGH"]
    expect = "speed"
    scale = 100
    tolerance = 1
    describe = "speed in cm/s in the gear's word"
    ''')


def test_the_simulated_vehicle_file_gives_its_commands_and_verifier():
    v = simulated_vehicle()
    assert [d.name for d in v.commands] == ["SET_BITRATE", "SET_GROUP_RATE", "SELECT_SYSTEM", "MARK_TEST_POINT",
                                            "INJECT_FAULT", "SET_BUS_RATE"]
    assert v.echo.names == ("CMD_COUNT", "CMD_LAST_OPCODE", "CMD_RESULT") and v.echo.accepted == 1
    assert v.echo.results[3] == ("bad_crc", "the vehicle reports a bad packet (CRC or format)")
    assert set(v.telemetry_names()) == {"CMD_COUNT", "CMD_LAST_OPCODE", "CMD_RESULT", "BITRATE_KBPS", "TEST_POINT",
                                        "SYSTEM", "FAULT", "FC_SPF", "VIB_SPF", "BC_AIRDATA_MS", "BC_ANGLES_MS",
                                        "BC_BARO_MS"}


def test_a_new_vehicle_is_a_file_its_echo_names_verify_its_commands(tmp_path):
    path = tmp_path / "rover.toml"
    path.write_text(ROVER)
    v = commanding_from(load_mission([path]))
    drive = v.commands[0]
    assert drive.timeout_ack_s == 1.5 and v.telemetry_names() == ("UPLINK_RX", "UPLINK_OP", "UPLINK_STATUS",
                                                                   "SPEED_LOW", "SPEED_HIGH")
    args = check_args(drive, {"speed": 1.2, "gear": "high"})
    assert drive.effect.parameter(args) == "SPEED_HIGH" and drive.effect.expected(args) == pytest.approx(120)
    sent = []
    svc = CommandService(v.commands, lambda *a: sent.append(a) or b"pkt", echo=v.echo)
    svc.authority.take(ALICE, T0)
    svc.observe({"UPLINK_RX": 4, "UPLINK_OP": 0, "UPLINK_STATUS": 0}, T0)
    svc.submit(ALICE, "DRIVE", {"speed": 1.2, "gear": "high"}, now_ns=T0)
    rel = svc.next_to_send(T0)
    assert sent[0][1] == 7 and rel.packet == b"pkt"
    svc.sent(rel.record.id, T0)
    svc.observe({"UPLINK_RX": 5, "UPLINK_OP": 7, "UPLINK_STATUS": 10}, T0 + S)
    assert rel.record.state == State.ACKNOWLEDGED
    svc.observe({"SPEED_HIGH": 119.5}, T0 + 2 * S)
    assert rel.record.state == State.COMPLETED
    svc.submit(ALICE, "DRIVE", {"speed": 1, "gear": "low"}, now_ns=T0 + 3 * S)
    rel = svc.next_to_send(T0 + 3 * S)
    svc.sent(rel.record.id, T0 + 3 * S)
    svc.observe({"UPLINK_RX": 6, "UPLINK_OP": 7, "UPLINK_STATUS": 11}, T0 + 4 * S)
    assert (rel.record.state, rel.record.code) == (State.FAILED, "refused")
    assert "UPLINK_STATUS 11" in rel.record.detail


@pytest.mark.parametrize("command, message", [
    ({"opcode": "7"}, "rover.toml: command 'X': X: opcode must be a positive integer"),
    ({"opcode": 1, "args": [{"name": "a", "kind": "u16"}]}, "command 'X': argument 'a': unknown kind 'u16'"),
    ({"opcode": 256}, "command 'X': field 'opcode': 256 outside 1..255"),
    ({"opcode": 1, "colour": "red"}, r"command 'X': unknown field\(s\) 'colour'"),
    ({"opcode": 1, "args": [{"name": "a", "kind": "u32"}], "effect": {"param": "P", "expect": "b"}},
     "command 'X': field 'effect': 'expect' must name an argument \\(a\\), got 'b'"),
    ({"opcode": 1, "args": [{"name": "a", "kind": "u32"}], "effect": {"param_by": "a", "params": ["P"], "expect": "a"}},
     "'param_by' must name an enum argument"),
    ({"opcode": 1, "args": [{"name": "g", "kind": "enum", "choices": {"x": 0, "y": 1}}],
      "effect": {"param_by": "g", "params": ["P"], "expect": "g"}}, "'params' must list a parameter name for each code"),
])
def test_bad_command_tables_name_the_file_command_and_field(command, message):
    doc = {"verifier": {"count": "C", "last_opcode": "L", "result": "R"}, "command": [{"name": "X", **command}]}
    with pytest.raises(ConfigError, match=message):
        commanding_from(parse_mission_mapping(doc, "rover.toml"))


def test_commands_and_verifier_merge_once(tmp_path):
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text(ROVER)
    b.write_text("[[command]]\n" + ROVER.split("[[command]]")[1])
    with pytest.raises(ConfigError, match=f"command 'DRIVE' defined twice: {a} and {b}"):
        load_mission([a, b])
    b.write_text(ROVER.split("[[command]]")[0])
    with pytest.raises(ConfigError, match=r"\[verifier\] given twice"):
        load_mission([a, b])
    with pytest.raises(ConfigError, match="commands with an echo need a \\[verifier\\] table"):
        commanding_from(parse_mission_mapping({"command": [{"name": "X", "opcode": 1}]}, "v.toml"))
