"""Parameter database: files, TMATS, validation, and decommutation through each."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from telemetry_formats.ch10.packet import build_packet, parse_packet
from telemetry_formats.ch10.pcm import DATA_TYPE_PCM_F1, PcmLayout, PcmMode, build_pcm_body
from telemetry_formats.decom import Decommutator
from telemetry_formats.paramdb import (
    ConfigError,
    from_tmats,
    load_parameter_file,
    parse_parameter_mapping,
)
from telemetry_formats.tmats import parse_tmats

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

TMATS = r"""G\PN:TEST;G\106:11;
R-1\TK1-1:3;R-1\DSI-1:LINK1;R-1\CDT-1:PCMIN;R-1\CDLN-1:LINK1;R-1\PDP-1:UN;
P-1\DLN:LINK1;P-1\D2:100000;P-1\F1:16;P-1\F2:M;P-1\MF\N:4;P-1\MF1:8;P-1\MF2:144;P-1\MF4:32;
P-1\MF5:111111100110101100101000010000XX;
P-1\ISF\N:1;P-1\ISF1-1:SFID;P-1\ISF2-1:ID;P-1\IDC1-1:1;P-1\IDC3-1:13;P-1\IDC4-1:4;P-1\IDC6-1:0;P-1\IDC10-1:INC;
D-1\DLN:LINK1;D-1\ML\N:1;D-1\MN\N-1:3;
D-1\MN-1-1:PITCH;D-1\LT-1-1:WDFR;D-1\MML\N-1-1:1;D-1\MNF\N-1-1-1:1;D-1\WP-1-1-1-1:2;D-1\WI-1-1-1-1:0;D-1\FP-1-1-1-1:1;D-1\FI-1-1-1-1:1;
D-1\MN-1-2:OILT;D-1\LT-1-2:WDFR;D-1\WP-1-2-1-1:3;D-1\FP-1-2-1-1:2;D-1\FI-1-2-1-1:4;D-1\WFM-1-2-1-1:0000111111111111;
D-1\MN-1-3:BAD;D-1\WP-1-3-1-1:99;
C-1\DCN:PITCH;C-1\MN1:pitch attitude;C-1\MN3:deg;C-1\BFM:TWO;C-1\DCT:COE;C-1\CO\N:1;C-1\CO:0;C-1\CO-1:0.01;
C-1\MOT5:30;C-1\MOT6:-30;C-1\MOT3:45;C-1\MOT4:-45;
C-2\DCN:OILT;C-2\MN3:degC;C-2\BFM:UNS;C-2\DCT:PRS;C-2\PS\N:2;C-2\PS3-1:0;C-2\PS4-1:-40;C-2\PS3-2:4095;C-2\PS4-2:160;
X-1\UNKNOWN:kept;
"""


def test_example_files_toml_and_yaml_agree():
    a = load_parameter_file(EXAMPLES / "params.toml")
    b = load_parameter_file(EXAMPLES / "params.yaml")
    assert a.frame == b.frame
    assert a.names == b.names == ["ALT", "VIB_X", "EGT", "GEAR_DOWN", "FUEL_FLOW"]
    assert a["VIB_X"].positions(a.frame)[:, 0].tolist() == [10, 26, 42, 58]
    assert a["EGT"].nominal_rate(a.frame) == pytest.approx(1e6 / (32 + 63 * 16) / 4)


@pytest.mark.parametrize(
    "param, message",
    [
        ({"name": "X", "word": 70}, "word 70 outside 1..63"),
        ({"name": "X", "word": 3, "mask": "0x0F0F"}, "not contiguous"),
        ({"name": "X", "word": 3, "encoding": "bcd"}, "encoding 'bcd'"),
        ({"name": "X", "word": 3, "mask": "0x00FF", "encoding": "float"}, "float needs 16, 32 or 64 bits"),
        ({"name": "X", "word": 3, "pairs": [[5, 1], [1, 2]]}, "increasing raw"),
        ({"name": "X", "word": 3, "frame": 17}, "frame_position 17 outside 1..16"),
        ({"name": "X", "word": 3, "limits": {"high": 3}}, "unknown limit keys"),
        ({"word": 3}, "has no name"),
    ],
)
def test_invalid_parameters_name_the_field(param, message):
    doc = {"frame": {"words_per_minor": 64, "minor_frames": 16, "sfid": {"word": 1}}, "parameter": [param]}
    with pytest.raises(ConfigError, match=message):
        parse_parameter_mapping(doc)


def test_duplicate_names_and_missing_frame_rejected():
    with pytest.raises(ConfigError, match="defined twice"):
        parse_parameter_mapping({"frame": {"words_per_minor": 8}, "parameter": [{"name": "A", "word": 1}] * 2})
    with pytest.raises(ConfigError, match=r"\[frame\]"):
        parse_parameter_mapping({"parameter": []})


def test_bad_file_syntax_is_a_config_error(tmp_path):
    bad = tmp_path / "p.toml"
    bad.write_text("[frame\nwords = 1")
    with pytest.raises(ConfigError, match="p.toml"):
        load_parameter_file(bad)


def test_tmats_builds_frame_and_parameters():
    t = parse_tmats(TMATS)
    assert t.get("X-1\\UNKNOWN") == "kept"
    db, problems = from_tmats(t, 3)
    f = db.frame
    assert (f.words_per_minor, f.minor_frames, f.bit_rate, f.bits_per_minor) == (8, 4, 100000, 144)
    assert f.sync_mask == 0xFFFFFFFC  # two don't-care bits
    assert f.sfid.word == 1 and f.sfid.msb_bit == 13 and f.sfid.length == 4
    assert db.names == ["PITCH", "OILT"]
    assert any("BAD" in p for p in problems)
    pitch, oilt = db["PITCH"], db["OILT"]
    assert pitch.encoding == "signed" and pitch.units == "deg"
    assert pitch.calibration.polynomial == (0.0, 0.01)
    assert (pitch.limits.warning_high, pitch.limits.critical_low) == (30.0, -45.0)
    assert oilt.fragments[0].mask == 0x0FFF and oilt.frame_position == 2 and oilt.frame_interval == 4
    with pytest.raises(ConfigError, match="no PCM P-group for channel 9"):
        from_tmats(t, 9)


def test_tmats_configured_decommutation_end_to_end():
    db, _ = from_tmats(parse_tmats(TMATS), 3)
    frame = db.frame
    n = 16
    words = np.zeros((n, 8), np.uint64)
    words[:, 1] = np.arange(n) % 4  # SFID in the low 4 bits (bits 13-16 of the word)
    pitch = np.linspace(-5000, 5000, n).astype(np.int64)
    words[:, 2] = pitch.astype(np.uint64) & np.uint64(0xFFFF)
    words[:, 3] = 0xF000 | (np.arange(n, dtype=np.uint64) * 200)  # high nibble masked off
    body = build_pcm_body(PcmLayout(frame, PcmMode.UNPACKED), words, times=np.arange(n, dtype=np.uint64) * 14)
    dec = Decommutator(db, assemble_major=True)
    res = dec.feed(parse_packet(build_packet(channel_id=3, data_type=DATA_TYPE_PCM_F1, body=body)))
    cols = {name: res.samples.column(name) for name in db.names}
    np.testing.assert_allclose(cols["PITCH"][2], pitch * 0.01)
    lim = cols["PITCH"][3]
    assert lim[0] == -2 and lim[-1] == 2 and lim[n // 2] == 0
    t, raw, eu, _ = cols["OILT"]
    rows = np.arange(n)[np.arange(n) % 4 == 1]  # minor frame 2 of each major frame
    np.testing.assert_array_equal(raw, rows * 200)
    np.testing.assert_allclose(eu, -40 + rows * 200 / 4095 * 200)
    assert len(res.major) == 4


def test_an_enum_table_in_the_parameter_file_names_a_discretes_values() -> None:
    doc = {"frame": {"name": "F", "words_per_minor": 8},
           "parameter": [{"name": "SYSTEM", "word": 2, "enum": {"0": "primary", "1": "backup"}},
                         {"name": "COUNT", "word": 3}, {"name": "ALT", "word": 4, "polynomial": [0, 0.5]}]}
    db = parse_parameter_mapping(doc)
    by = {p.name: p for p in db.parameters}
    assert by["SYSTEM"].enum == ((0, "primary"), (1, "backup")) and by["SYSTEM"].display_kind() == "enum"
    assert by["COUNT"].display_kind() == "integer" and by["ALT"].display_kind() == "real"
    doc["parameter"][0]["enum"] = {"x": "primary"}
    with pytest.raises(ConfigError, match="SYSTEM.*enum"):
        parse_parameter_mapping(doc)


def test_an_enum_table_survives_the_tmats_the_simulator_sends() -> None:
    from groundstation.simulator.vehicle import Vehicle

    v = Vehicle(start_ns=0)
    db, problems = from_tmats(parse_tmats(v.tmats_text()), v.pcm_channel)
    by = {p.name: p for p in db.parameters}
    assert by["SYSTEM"].enum == ((0, "primary"), (1, "backup"))
    assert dict(by["CMD_RESULT"].enum)[3] == "bad packet" and by["CMD_COUNT"].enum == ()
