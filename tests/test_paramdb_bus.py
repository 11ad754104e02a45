"""The mission database: bus parameters from TOML/YAML, ICD CSV and TMATS B-groups; merging; errors that name the place."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from telemetry_formats.paramdb import (
    ConfigError,
    Parameter429,
    Parameter1553,
    WordBits,
    buses_from_tmats,
    load_mission,
    load_mission_file,
    parse_icd_csv,
    parse_mission_mapping,
)
from telemetry_formats.tmats import parse_tmats

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
HEADER = ("name,source,channel,bus,rt,tr,subaddress,word,label,sdi,msb,lsb,encoding,scale,offset,units,"
          "warn_low,warn_high,crit_low,crit_high,group")

VEHICLE_TOML = textwrap.dedent('''
    [frame]
    name = "PCM"
    channel = 3
    words_per_minor = 8

    [[source]]
    name = "ADC bus"
    type = "1553"
    channel = 5

    [[source]]
    name = "NAV"
    type = "429"
    channel = 10

    [[source]]
    name = "ENGINE PCM"
    type = "pcm"
    channel = 4
    frame = { words_per_minor = 16, word_length = 12 }

    [[parameter]]
    name = "P1"
    word = 2

    [[parameter]]
    name = "E1"
    source = "ENGINE PCM"
    word = 3

    [[parameter]]
    name = "BARO"
    source = "ADC bus"
    rt = 1
    tr = "T"
    subaddress = 2
    word_count = 8
    words = [7, 8]
    encoding = "float"
    units = "ft"
    limits = { warning_high = 45000 }

    [[parameter]]
    name = "SPLIT"
    source = "1553"
    channel = 6
    rt = 2
    tr = "R"
    subaddress = 3
    fragments = [{ word = 1, msb = 9, lsb = 16 }, { word = 4, msb = 1, lsb = 4 }]

    [[parameter]]
    name = "LAT"
    source = "NAV"
    label = 310
    msb = 28
    lsb = 9
    resolution = 0.000171661376953125
    units = "deg"

    [[parameter]]
    name = "GS_BCD"
    source = "NAV"
    label = "012"
    bus = 1
    sdi = 2
    msb = 29
    lsb = 15
    encoding = "bcd"
    ssm = "bcd"
    polynomial = [0, 1]
    ''')


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_vehicle_file_with_sources_pcm_1553_and_429(tmp_path):
    db = load_mission_file(write(tmp_path, "vehicle.toml", VEHICLE_TOML))
    assert db.names == ["P1", "E1", "BARO", "SPLIT", "LAT", "GS_BCD"]
    assert db.pcm_database(3).names == ["P1"] and db.pcm_database(4).names == ["E1"]
    assert db.pcm_database(4).frame.word_length == 12
    with pytest.raises(ConfigError, match="several PCM links"):
        db.pcm_database(9)
    baro = db["BARO"]
    assert isinstance(baro, Parameter1553) and baro.key == (1 << 6) | (1 << 5) | 2
    assert baro.fragments == (WordBits(7, 1, 16), WordBits(8, 1, 16)) and baro.word_count == 8
    assert baro.limits.warning_high == 45000
    assert db["SPLIT"].fragments == (WordBits(1, 9, 16), WordBits(4, 1, 4)) and db["SPLIT"].channel == 6
    lat, gs = db["LAT"], db["GS_BCD"]
    assert isinstance(lat, Parameter429) and lat.label == 0o310 and lat.encoding == "bnr" and lat.sdi is None
    assert lat.calibration.polynomial == (0.0, 0.000171661376953125) and lat.ssm_rule == "bnr"
    assert (gs.label, gs.bus, gs.sdi, gs.ssm_rule) == (0o12, 1, 2, "bcd")
    assert db.source_of("BARO").name == "ADC bus" and db.source_of("SPLIT").label == "1553 channel 6"
    assert db.source_of("E1").name == "ENGINE PCM"
    assert db.channels("1553") == [5, 6] and db.channels("429") == [10]
    assert db.origins["LAT"].endswith("vehicle.toml")


def test_yaml_form_is_the_same(tmp_path):
    import tomllib

    import yaml

    doc = tomllib.loads(VEHICLE_TOML)
    a = load_mission_file(write(tmp_path, "v.yaml", yaml.safe_dump(doc)))
    b = parse_mission_mapping(doc, "v.toml")
    assert a.names == b.names
    assert [p.fragments for p in a.mil1553] == [p.fragments for p in b.mil1553]
    assert [(p.label, p.msb, p.lsb, p.calibration) for p in a.arinc429] == \
        [(p.label, p.msb, p.lsb, p.calibration) for p in b.arinc429]


def test_bus_only_file_and_the_old_pcm_file_still_load(tmp_path):
    db = parse_mission_mapping({"parameter": [{"name": "X", "source": "429", "channel": 2, "label": "203"}]}, "f")
    assert db.pcm == [] and db.pcm_database() is None and db["X"].msb == 28
    old = load_mission_file(EXAMPLES / "params.toml")
    assert old.pcm_database().names == ["ALT", "VIB_X", "EGT", "GEAR_DOWN", "FUEL_FLOW"]


@pytest.mark.parametrize("param, message", [
    ({"source": "ADC bus", "rt": 32, "tr": "T", "subaddress": 1, "word": 1}, "field 'rt': 32 outside 0..31"),
    ({"source": "ADC bus", "rt": 1, "tr": "X", "subaddress": 1, "word": 1}, "field 'tr': 'X' is not T or R"),
    ({"source": "ADC bus", "rt": 1, "tr": "T", "subaddress": 1, "word": 1, "msb": 17}, "field 'msb': 17 outside 1..16"),
    ({"source": "ADC bus", "rt": 1, "tr": "T", "subaddress": 1, "word": 9, "word_count": 8},
     "field 'word': 9 outside 1..8"),
    ({"source": "ADC bus", "rt": 1, "tr": "T", "subaddress": 1, "word": 1, "lsb": 8, "encoding": "float"},
     "float needs 16, 32 or 64 bits, the words give 8"),
    ({"source": "ADC bus", "tr": "T", "subaddress": 1, "word": 1}, "field 'rt': missing"),
    ({"source": "NAV", "label": "209"}, "field 'label': '209' is not an octal label"),
    ({"source": "NAV", "label": "203", "msb": 20, "lsb": 11}, "BNR data runs from bit 28"),
    ({"source": "NAV", "label": "203", "encoding": "packed"}, "field 'encoding': 'packed' is not one of"),
    ({"source": "NAV", "label": "203", "sdi": 4}, "field 'sdi': 4 outside 0..3"),
    ({"source": "NOPE", "label": "203"}, "field 'source': 'NOPE' is no source"),
    ({"source": "NAV", "label": "203", "scale": "x"}, "field 'scale': expected a number"),
])
def test_bad_bus_parameters_name_file_parameter_and_field(param, message):
    doc = {"source": [{"name": "ADC bus", "type": "1553", "channel": 5}, {"name": "NAV", "type": "429", "channel": 9}],
           "parameter": [{"name": "Q", **param}]}
    with pytest.raises(ConfigError, match=message) as err:
        parse_mission_mapping(doc, "veh.toml")
    assert str(err.value).startswith("veh.toml: parameter 'Q'")


# -- ICD CSV -----------------------------------------------------------------------------------------------------

def test_icd_csv_columns_extra_columns_and_defaults():
    text = ("Note," + HEADER.upper() + ",description,word_count\n"
            "x,ALT,1553,5,,1,T,1,1,,,1,16,signed,0.5,10,ft,,45000,-100,50000,air data,Pressure altitude,8\n"
            ",,,,,,,,,,,,,,,,,,,,,,,\n"
            "x,#comment,,,,,,,,,,,,,,,,,,,,,,\n"
            "x,HDG,429,10,,,,,,314,,28,14,bnr,0.0054931640625,,deg,,,,,nav,,\n"
            "x,FLT,1553,5,,1,T,2,3-4,,,1,16,float,,,kt,,,,,air data,,\n")
    db = parse_icd_csv(text, "icd.csv")
    alt, hdg, flt = db["ALT"], db["HDG"], db["FLT"]
    assert (alt.rt, alt.tr, alt.subaddress, alt.word_count, alt.encoding) == (1, "T", 1, 8, "signed")
    assert alt.calibration.polynomial == (10.0, 0.5) and alt.limits.critical_low == -100
    assert alt.description == "Pressure altitude" and alt.group == "air data"
    assert (hdg.label, hdg.bus, hdg.sdi, hdg.msb, hdg.lsb) == (0o314, None, None, 28, 14)
    assert flt.fragments == (WordBits(3, 1, 16), WordBits(4, 1, 16)) and flt.calibration.is_identity
    assert db.origins == {"ALT": "icd.csv line 2", "HDG": "icd.csv line 5", "FLT": "icd.csv line 6"}


@pytest.mark.parametrize("row, message", [
    ("A,1553,5,,1,T,1,1,,,0,16,unsigned,,,,,,,,g", "icd.csv line 2: parameter 'A': field 'msb': 0 outside 1..16"),
    ("A,1553,5,,1,T,1,x,,,1,16,unsigned,,,,,,,,g", "icd.csv line 2: parameter 'A': field 'word': 'x'"),
    ("A,1553,,,1,T,1,1,,,1,16,unsigned,,,,,,,,g", "icd.csv line 2: parameter 'A': field 'channel': missing"),
    ("A,1554,5,,1,T,1,1,,,1,16,unsigned,,,,,,,,g", "field 'source': '1554' is not one of 1553, 429"),
    ("A,429,5,,,,,,203,,40,11,bnr,,,,,,,,g", "field 'msb': 40 outside 11..32"),
    ("A,429,5,,,,,,203,,29,11,bcd,,,,high,,,,g", "field 'warn_low': expected a number, got 'high'"),
    ("A,429,5,300,,,,,203,,29,11,bnr,,,,,,,,g", "field 'bus': 300 outside 0..255"),
    (",429,5,,,,,,203,,29,11,bnr,,,,,,,,g", "icd.csv line 2: field 'name': missing"),
])
def test_icd_csv_errors_name_file_line_parameter_field(row, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        parse_icd_csv(f"{HEADER}\n{row}\n", "icd.csv")


def test_icd_csv_header_and_duplicates():
    with pytest.raises(ConfigError, match="icd.csv line 1: the header lacks the column.s. sdi, group"):
        parse_icd_csv(HEADER.replace(",sdi", "").replace(",group", "") + "\n", "icd.csv")
    row = "A,429,5,,,,,,203,,28,11,bnr,,,,,,,,g"
    with pytest.raises(ConfigError, match="parameter 'A' defined twice: icd.csv line 2 and icd.csv line 3"):
        parse_icd_csv(f"{HEADER}\n{row}\n{row}\n", "icd.csv")


def test_several_files_merge_and_a_name_twice_names_both_places(tmp_path):
    csv_path = write(tmp_path, "icd.csv", f"{HEADER}\nHDG,429,10,,,,,,314,,28,14,bnr,1,,deg,,,,,nav\n"
                                          "PALT,1553,5,,1,T,1,1,,,1,16,signed,1,,ft,,,,,air\n")
    pcm = EXAMPLES / "params.toml"
    db = load_mission([pcm, csv_path])
    assert db.names == ["ALT", "VIB_X", "EGT", "GEAR_DOWN", "FUEL_FLOW", "PALT", "HDG"]
    assert db.origins["PALT"] == f"{csv_path} line 3" and db.origins["ALT"] == str(pcm)
    assert db.pcm_database().names[0] == "ALT"
    with pytest.raises(ConfigError) as err:
        load_mission([pcm, write(tmp_path, "icd2.csv", f"{HEADER}\nALT,1553,5,,1,T,1,1,,,1,16,signed,1,,ft,,,,,air\n")])
    assert str(err.value) == f"parameter 'ALT' defined twice: {pcm} and {tmp_path / 'icd2.csv'} line 2"
    with pytest.raises(ConfigError, match="channel 5 is given as both a 1553 and a 429 source"):
        load_mission([write(tmp_path, "a.csv", f"{HEADER}\nX,429,5,,,,,,203,,28,11,bnr,,,,,,,,g\n"),
                      write(tmp_path, "b.csv", f"{HEADER}\nY,1553,5,,1,T,1,1,,,1,16,signed,,,,,,,,g\n")])
    with pytest.raises(ConfigError, match=r"x\.txt: use a \.toml, \.yaml or \.yml file"):
        load_mission([write(tmp_path, "x.txt", "")])


# -- TMATS B-group -----------------------------------------------------------------------------------------------

TMATS_BUS = r"""G\PN:BUS TEST;G\106:17;
R-1\TK1-1:5;R-1\CDT-1:1553IN;R-1\CDLN-1:ADC-BUS;R-1\DSI-1:ADC-BUS;
R-1\TK1-2:10;R-1\CDT-2:429IN;R-1\CDLN-2:NAV-429;R-1\DSI-2:NAV-429;R-1\ASN-2-1:3;R-1\ANM-2-1:IRS1;
B-1\DLN:ADC-BUS;B-1\NBS\N:1;B-1\BNA-1:ADC;B-1\BT-1:1553;
B-1\NMS\N-1:2;
B-1\TRA-1-1:00001;B-1\TRM-1-1:1;B-1\STA-1-1:00001;B-1\DWC-1-1:01000;
B-1\MN\N-1-1:2;
B-1\MN-1-1-1:ALT;B-1\MWN-1-1-1-1:1;B-1\MBM-1-1-1-1:FW;B-1\MTO-1-1-1-1:N;B-1\MFP-1-1-1-1:1;
B-1\MN-1-1-2:BARO;B-1\MWN-1-1-2-1:7;B-1\MFP-1-1-2-1:1;B-1\MWN-1-1-2-2:8;B-1\MFP-1-1-2-2:2;
B-1\CWE-1-2:W;B-1\CMD-1-2:0C43;
B-1\MN-1-2-1:STAT;B-1\MWN-1-2-1-1:1;B-1\MBM-1-2-1-1:0000000011110000;
B-1\MN-1-2-2:REV;B-1\MWN-1-2-2-1:2;B-1\MTO-1-2-2-1:R;
B-2\DLN:NAV-429;B-2\BNA-1:IRS1;B-2\BT-1:A429;
B-2\LBL-1-1:310;B-2\SDI-1-1:ALL;
B-2\MN-1-1-1:LAT;B-2\MWN-1-1-1-1:1;B-2\MBM-1-1-1-1:00011111111111111111111100000000;
B-2\LBL-1-2:270;B-2\SDI-1-2:1;
B-2\MN-1-2-1:ALIGN;B-2\MWN-1-2-1-1:1;B-2\MBM-1-2-1-1:00000000000000000000000000000000010000000000;
C-1\DCN:ALT;C-1\MN3:ft;C-1\BFM:TWO;C-1\DCT:COE;C-1\CO\N:1;C-1\CO:0;C-1\CO-1:0.5;C-1\MOT5:45000;C-1\MOT3:50000;
C-2\DCN:BARO;C-2\BFM:FPT;C-2\MN3:ft;
C-3\DCN:LAT;C-3\BFM:BNR;C-3\DCT:COE;C-3\CO\N:1;C-3\CO:0;C-3\CO-1:0.000171661376953125;C-3\MN3:deg;
C-4\DCN:ALIGN;C-4\BFM:DIS;
"""


def test_tmats_b_group_to_bus_parameters_with_c_group_conversions():
    db, problems = buses_from_tmats(parse_tmats(TMATS_BUS))
    alt, baro, stat = db["ALT"], db["BARO"], db["STAT"]
    assert (alt.channel, alt.rt, alt.tr, alt.subaddress, alt.word_count) == (5, 1, "T", 1, 8)
    assert alt.encoding == "signed" and alt.calibration.polynomial == (0.0, 0.5) and alt.units == "ft"
    assert (alt.limits.warning_high, alt.limits.critical_high) == (45000.0, 50000.0)
    assert baro.encoding == "float" and baro.fragments == (WordBits(7), WordBits(8))
    # CMD 0x0C43: RT 1, transmit, subaddress 2, 3 words
    assert (stat.rt, stat.tr, stat.subaddress, stat.word_count) == (1, "T", 2, 3)
    assert stat.fragments == (WordBits(1, 9, 12),)
    assert any("REV" in p and "transfer order" in p for p in problems)
    lat = db["LAT"]
    assert (lat.channel, lat.label, lat.sdi, lat.bus, lat.encoding) == (10, 0o310, None, 3, "bnr")
    assert (lat.msb, lat.lsb) == (29, 9) and lat.units == "deg"
    assert any("ALIGN" in p for p in problems)  # a 44-character mask: not a bit string of the word
    assert {s.label for s in db.all_sources()} == {"ADC-BUS (1553, channel 5)", "NAV-429 (429, channel 10)"}


def test_serve_accepts_several_params_files_of_each_kind(tmp_path, capsys):
    from groundstation.cli import build_parser
    from groundstation.run import _station_config

    yaml_path = EXAMPLES / "params.yaml"
    csv_path = EXAMPLES / "icd_mixed_vehicle.csv"
    args = build_parser().parse_args(["serve", "--open", "--params", str(yaml_path), "--params", str(csv_path)])
    config = _station_config(args, True)
    assert config.params.names == ["ALT", "VIB_X", "EGT", "GEAR_DOWN", "FUEL_FLOW"]
    assert config.mission.channels("1553") == [5] and "NAV_LAT" in config.mission.names
    args = build_parser().parse_args(["serve", "--open", "--params", str(csv_path), "--params", str(csv_path)])
    with pytest.raises(SystemExit, match="defined twice"):
        _station_config(args, True)
