"""TMATS setup records: the TMATS packet (data type 0x01) and the attribute parser."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telemetry_formats.ch10.packet import build_packet, parse_packet
from telemetry_formats.ch10.reader import iter_packets
from telemetry_formats.ch10.tmats_packet import (
    DATA_TYPE_TMATS,
    build_tmats_body,
    parse_tmats_packet,
)
from telemetry_formats.tmats import Conversion, Fragment, Tmats, parse_tmats

# --------------------------------------------------------------------------- TMATS packet


@given(
    st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=127), max_size=300),
    st.integers(0, 255),
    st.booleans(),
    st.booleans(),
)
def test_tmats_packet_round_trip(text, version, srcc, xml):
    body = build_tmats_body(text, version=version, srcc=srcc, xml=xml)
    csdw = int.from_bytes(body[:4], "little")
    assert csdw == version | srcc << 8 | xml << 9  # bits 7-0, 8, 9; 31-10 reserved
    assert body[4:] == text.encode("ascii")
    raw = build_packet(channel_id=0, data_type=DATA_TYPE_TMATS, body=body)
    t = parse_tmats_packet(parse_packet(raw).body)
    assert (t.version, t.srcc, t.xml) == (version, srcc, xml)
    assert t.text == text.rstrip("\x00")


def test_tmats_packet_ignores_reserved_bits_and_nul_padding():
    body = (0xFFFF_FC00 | 0x0B).to_bytes(4, "little") + b"G\\PN:X;\0\0\0"
    t = parse_tmats_packet(body)
    assert (t.version, t.srcc, t.xml, t.text) == (0x0B, False, False, "G\\PN:X;")


def test_tmats_packet_non_ascii_is_replaced():
    t = parse_tmats_packet(b"\x07\x00\x00\x00G\\PN:\xff\xfe;")
    assert t.version == 7
    assert t.text == "G\\PN:\ufffd\ufffd;"


# --------------------------------------------------------------------------- real TMATS


@pytest.fixture(scope="module")
def pcm_tmats(sample_dir) -> Tmats:
    data = (sample_dir / "pcm.c10").read_bytes()
    first = next(iter(iter_packets(data[:100_000], final=False)))
    assert first.data_type == DATA_TYPE_TMATS and first.channel_id == 0
    record = parse_tmats_packet(first.body)
    assert not record.xml
    assert record.text.startswith("G\\PN:")
    return parse_tmats(record.text)


def test_pcm_tmats_general(pcm_tmats):
    assert pcm_tmats.problems == []
    assert pcm_tmats.program_name == "Heim GSS-100"
    assert pcm_tmats.irig106_version == "07"
    assert pcm_tmats.get("R-1\\N") == "60"
    assert len(pcm_tmats.channels) == 60


EXPECTED_LINKS = {
    51: ("PN15 20Mbit", "TM", 20e6, 31, 512),
    52: ("METS231 Pattern1", "TM", 10e6, 31, 512),
    53: ("PN15 5 mbit", "TM", 5e6, 255, 4096),
    54: ("PN15 200 kbit", "TM", 200e3, 10, 88),
    55: ("METS Pattern1 Packed", "PFS", 10e6, 31, 512),
    56: ("METS Pattern1 Unpacked", "UN", 10e6, 31, 512),
}


@pytest.mark.parametrize("channel_id", sorted(EXPECTED_LINKS))
def test_pcm_tmats_p_groups(pcm_tmats, channel_id):
    name, packing, rate, mf1, mf2 = EXPECTED_LINKS[channel_id]
    ch = pcm_tmats.channel(channel_id)
    assert ch is not None
    assert ch.channel_type == "PCMIN" and ch.enabled
    assert ch.data_link == name
    assert ch.pcm_packing == packing
    link = pcm_tmats.pcm_link_for_channel(channel_id)
    assert link is not None and link.name == name
    assert link.bit_rate == rate
    assert (link.words_per_minor, link.bits_per_minor, link.minor_frames) == (mf1, mf2, 1)
    assert link.code == "NRZ-L" and link.msb_first and link.parity == "NO"
    assert link.sfid == []


def test_pcm_tmats_channel_55_in_detail(pcm_tmats):
    link = pcm_tmats.pcm_link_for_channel(55)
    assert link.name == "METS Pattern1 Packed"
    assert link.index == 5
    assert link.words_per_minor == 31
    assert link.bits_per_minor == 512
    assert link.word_length == 16
    assert link.sync_length == 32
    assert link.sync_pattern == f"{0xFE6B2840:032b}" == "11111110011010110010100001000000"
    assert pcm_tmats.channel(55).pcm_packing == "PFS"
    # and the 8-bit link has its own word length and 16-bit sync
    link54 = pcm_tmats.pcm_link_for_channel(54)
    assert link54.word_length == 8 and link54.sync_length == 16
    assert link54.sync_pattern == f"{0xEB90:016b}"


def test_pcm_tmats_non_pcm_channels(pcm_tmats):
    assert pcm_tmats.channel(1).channel_type == "TIMEIN"
    assert pcm_tmats.pcm_link_for_channel(1) is None
    assert pcm_tmats.channel(87).channel_type == "1553IN"
    assert pcm_tmats.channel(57).enabled is False  # CHE-9:F
    assert pcm_tmats.channel(999) is None
    assert pcm_tmats.pcm_link_for_channel(999) is None


def test_pcm_tmats_keeps_every_attribute(pcm_tmats):
    # Unknown codes (not modelled) stay available, duplicates and all.
    assert pcm_tmats.get("R-1\\ICE-7") == "180"
    assert pcm_tmats.get("P-5\\SYNC2") == "1"
    assert sum(code == "M-1\\BB\\DLN" for code, _ in pcm_tmats.attributes) > 1
    assert pcm_tmats.values == dict(pcm_tmats.attributes)


def test_test_tmt_parses(sample_dir):
    raw = (sample_dir / "test.tmt").read_bytes()
    t = parse_tmats(raw)
    assert t.problems == []
    assert t.program_name == "D200-KC135OPSCK"
    assert t.irig106_version == "06"
    groups = {code.split("\\")[0].split("-")[0] for code, _ in t.attributes}
    assert groups == {"G", "R", "V", "B"}
    assert t.get("R-1\\N") == "21"
    assert len(t.channels) == 21
    assert [c.channel_id for c in t.channels] == list(range(1, 22))
    assert t.channel(1).channel_type == "TIMEIN"
    assert t.channel(2).channel_type == "1553IN" and t.channel(2).data_source == "UAR40-1-1"
    assert t.channel(6).channel_type == "429IN"
    assert t.channel(21).enabled is False
    assert t.pcm_links == {} and t.measurements == {} and t.conversions == {}
    # repeated attributes are all kept, get() returns the last
    sys_values = [v for code, v in t.attributes if code == "V-1\\HDS\\SYS"]
    assert len(sys_values) > 5
    assert t.get("V-1\\HDS\\SYS") == sys_values[-1]
    assert t.get("B-2\\BNA-1") == "BUS1553-1"
    # bytes and str give the same result
    assert parse_tmats(raw.decode("ascii")).attributes == t.attributes


# --------------------------------------------------------------------------- synthetic TMATS

SYNTHETIC = r"""
G\PN:SYNTH;
G\106:17;
COMMENT: this is a comment and not an attribute;
R-1\ID:REC;
R-1\N:2;
R-1\TK1-1:3;
R-1\DSI-1:LinkA;
R-1\CDT-1:PCMIN;
R-1\CDLN-1:LinkA;
R-1\PDP-1:UN;
R-1\TK1-2:0x10;
R-1\DSI-2:Old;
R-1\CDT-2:pcmin;
R-1\PDLN-2:LinkB;
R-1\CHE-2:F;
P-1\DLN:LinkA;
P-1\D1:NRZ-L;
P-1\D2:1000000;
P-1\F1:12;
P-1\F2:L;
P-1\F3:ODD;
P-1\MF\N:4;
P-1\MF1:8;
P-1\MF2:96;
P-1\MF4:24;
P-1\MF5:1111 1010 1111 0011 0010 0000;
P-1\MFW1-1:5;
P-1\MFW2-1:24;
P-1\ISF\N:1;
P-1\ISF1-1:SFID;
P-1\IDC1-1:2;
P-1\IDC2-1:12;
P-1\IDC3-1:1;
P-1\IDC4-1:2;
P-1\IDC6-1:1;
P-1\IDC8-1:4;
P-1\IDC10-1:DEC;
P-1\XYZ:unknown P attribute;
P-2\DLN:LinkB;
P-2\MF1:4;
D-1\DLN:LinkA;
D-1\ML\N:1;
D-1\MN-1-1:ALT;
D-1\LT-1-1:WDFR;
D-1\WP-1-1-1:3;
D-1\WI-1-1-1:0;
D-1\FP-1-1-1:2;
D-1\FI-1-1-1:4;
D-1\WFM-1-1-1:111111000000;
D-1\WFT-1-1-1:M;
D-1\WP-1-1-2:4;
D-1\WFM-1-1-2:fw;
D-1\WFP-1-1-2:2;
D-1\MN-1-2:SPEED;
D-1\WP-1-2-1:6;
D-1\WI-1-2-1:2;
D-1\MN-1-3:NOWHERE;
D-1\LT-1-3:tm;
C-1\DCN:ALT;
C-1\MN1:Altitude;
C-1\MN3:ft;
C-1\BFM:TWO;
C-1\DCT:COE;
C-1\CO\N:2;
C-1\CO:-100.5;
C-1\CO-1:2.5;
C-1\CO-2:0.001;
C-1\MOT1:50000;
C-1\MOT2:-1000;
C-1\MOT3:45000;
C-1\MOT4:-500;
C-1\MOT5:40000;
C-1\MOT6:0;
C-2\DCN:SPEED;
C-2\MN3:kt;
C-2\DCT:PRS;
C-2\PS\N:3;
C-2\PS3-1:0;
C-2\PS4-1:0;
C-2\PS3-2:2048;
C-2\PS4-2:250.5;
C-2\PS3-3:4095;
C-2\PS4-3:600;
C-3\MN3:no name, ignored;
X-9\FOO:bar;
"""


@pytest.fixture(scope="module")
def synth() -> Tmats:
    return parse_tmats(SYNTHETIC)


def test_synthetic_general(synth):
    assert synth.problems == []
    assert synth.program_name == "SYNTH"
    assert synth.irig106_version == "17"


def test_synthetic_recorder_channels(synth):
    a, b = synth.channels
    assert (a.index, a.channel_id, a.channel_type, a.data_link, a.pcm_packing, a.enabled) == (
        1,
        3,
        "PCMIN",
        "LinkA",
        "UN",
        True,
    )
    # hex channel ID, PDLN (pre-106-07 name), upper-cased type, disabled
    assert (b.channel_id, b.channel_type, b.data_link, b.enabled) == (0x10, "PCMIN", "LinkB", False)
    assert synth.pcm_link_for_channel(0x10).name == "LinkB"


def test_synthetic_p_group(synth):
    link = synth.pcm_link_for_channel(3)
    assert link is synth.pcm_links["LinkA"]
    assert (link.index, link.code, link.bit_rate) == (1, "NRZ-L", 1e6)
    assert (link.word_length, link.msb_first, link.parity) == (12, False, "ODD")
    assert (link.minor_frames, link.words_per_minor, link.bits_per_minor) == (4, 8, 96)
    assert link.sync_length == 24
    assert link.sync_pattern == "111110101111001100100000"  # spaces removed
    assert link.word_lengths == {5: 24}
    (sfid,) = link.sfid
    assert (sfid.name, sfid.word, sfid.word_length, sfid.msb_bit, sfid.length) == ("SFID", 2, 12, 1, 2)
    assert (sfid.first_count, sfid.last_count, sfid.increasing) == (1, 4, False)
    # defaults for an almost empty P-group
    b = synth.pcm_links["LinkB"]
    assert (b.words_per_minor, b.word_length, b.minor_frames, b.msb_first, b.sfid) == (4, 16, 1, True, [])


def test_synthetic_d_group(synth):
    alt = synth.measurements["ALT"]
    assert (alt.data_link, alt.location_type) == ("LinkA", "WDFR")
    assert alt.fragments == [
        Fragment(
            word_position=3,
            word_interval=0,
            frame_position=2,
            frame_interval=4,
            mask="111111000000",
            transfer_order="M",
            fragment_position=1,
        ),
        Fragment(word_position=4, mask="FW", fragment_position=2),
    ]
    speed = synth.measurements["SPEED"]
    assert speed.fragments == [Fragment(word_position=6, word_interval=2)]  # supercommutated
    assert speed.fragments[0].frame_position is None
    nowhere = synth.measurements["NOWHERE"]
    assert nowhere.fragments == [] and nowhere.location_type == "TM"
    assert [m.name for m in synth.measurements_of("LinkA")] == ["ALT", "SPEED", "NOWHERE"]
    assert synth.measurements_of("LinkB") == []


def test_synthetic_c_groups(synth):
    assert set(synth.conversions) == {"ALT", "SPEED"}  # C-3 has no DCN
    alt = synth.conversions["ALT"]
    assert alt == Conversion(
        name="ALT",
        description="Altitude",
        units="ft",
        binary_format="TWO",
        kind="COE",
        coefficients=[-100.5, 2.5, 0.001],
        pairs=[],
        high_limit=50000.0,
        low_limit=-1000.0,
        high_alert=45000.0,
        low_alert=-500.0,
        high_warning=40000.0,
        low_warning=0.0,
    )
    speed = synth.conversions["SPEED"]
    assert (speed.kind, speed.units, speed.binary_format) == ("PRS", "kt", "UNS")
    assert speed.pairs == [(0.0, 0.0), (2048.0, 250.5), (4095.0, 600.0)]
    assert speed.coefficients == []
    assert speed.high_limit is None and speed.low_warning is None


def test_synthetic_unknown_attributes_kept(synth):
    assert synth.get("P-1\\XYZ") == "unknown P attribute"
    assert synth.get("X-9\\FOO") == "bar"
    assert synth.get("C-3\\MN3") == "no name, ignored"
    assert ("X-9\\FOO", "bar") in synth.attributes
    assert synth.get("NOPE\\NOPE") is None
    assert synth.get("NOPE\\NOPE", "dflt") == "dflt"
    # order of appearance is kept
    codes = [c for c, _ in synth.attributes]
    assert codes[0] == "G\\PN" and codes[-1] == "X-9\\FOO"


def test_attribute_syntax_edge_cases():
    t = parse_tmats("  g\\pn : a:b:c ;\r\nG\\TA:;\n\tR-1\\TK1-1:7;;;  ;G\\COM:x")
    assert t.attributes == [("G\\PN", "a:b:c"), ("G\\TA", ""), ("R-1\\TK1-1", "7"), ("G\\COM", "x")]
    assert t.problems == []
    assert t.channels[0].channel_id == 7


def test_problems_collected_not_raised():
    t = parse_tmats("G\\PN:ok;this is not an attribute;also:not one;G\\106:09;")
    assert t.attributes == [("G\\PN", "ok"), ("G\\106", "09")]
    assert len(t.problems) == 2
    assert all(p.startswith("not an attribute") for p in t.problems)


def test_malformed_values_fall_back_to_defaults():
    t = parse_tmats(
        "P-1\\DLN:L;P-1\\MF1:lots;P-1\\F1:inf;P-1\\MF\\N:1e400;P-1\\D2:fast;"
        "P-1\\IDC1-1:nan;P-1\\MFW1-1:x;P-1\\MFW2-1:8;"
        "C-1\\DCN:C;C-1\\CO\\N:-3;C-1\\CO:1;C-1\\PS3-1:1;C-1\\PS4-1:bad;C-1\\MOT1:high;"
        "R-1\\TK1-1:abc;D-1\\MN-1-1:M;D-1\\WP-1-1-1:?;"
    )
    link = t.pcm_links["L"]
    assert (link.words_per_minor, link.word_length, link.minor_frames, link.bit_rate) == (0, 16, 1, None)
    assert link.sfid == [] and link.word_lengths == {}
    conv = t.conversions["C"]
    assert conv.coefficients == [1.0] and conv.pairs == [] and conv.high_limit is None
    assert t.channels[0].channel_id is None
    assert t.measurements["M"].fragments == []


def test_odd_index_shapes_do_not_raise():
    # Index tuples of the wrong length (found by fuzzing: these used to raise ValueError).
    t = parse_tmats(
        "R-1\\TK1-1-2:5;R-1\\TK1-3:3;D-1\\MN-1:x;D-1\\MN-1-2-3:y;D-1\\MN-1-1:M;D-1\\WP-1-1:4;"
        "P-1\\MFW1-1-1:3;C-1\\DCN:a;C-1\\PS3-1-1:3;C-1\\PS4-1-1:4;"
    )
    assert [c.channel_id for c in t.channels] == [3]
    assert list(t.measurements) == ["M"]
    assert t.conversions["a"].pairs == []


def test_huge_numbers_do_not_raise_or_hang():
    # Found by fuzzing: OverflowError from int(float("inf")), Python's 4300-digit
    # int() limit, and CO\N building a list of CO\N zeros.
    digits = "9" * 5000
    start = time.perf_counter()
    t = parse_tmats(
        f"P-{digits}\\MF1:3;R-1\\TK1-{digits}:3;P-1\\MF1:{digits};P-1\\MF2:1e400;"
        f"C-1\\DCN:x;C-1\\CO\\N:{digits};C-2\\DCN:y;C-2\\CO\\N:2000000000;C-2\\CO:3;"
    )
    assert time.perf_counter() - start < 1.0
    assert t.pcm_links["P-1"].words_per_minor == 0
    assert t.conversions["y"].coefficients[0] == 3.0
    assert t.get(f"P-{digits}\\MF1") == "3"  # still kept as an attribute


def test_pathological_text_is_linear():
    # A code followed by a long run of whitespace and no colon made the attribute
    # regex backtrack quadratically; many D-group measurements made the fragment
    # lookup quadratic.
    start = time.perf_counter()
    t = parse_tmats("G\\" + " " * 200_000)
    assert t.attributes == [] and len(t.problems) == 1
    parts = ["D-1\\DLN:L;"]
    for i in range(1, 3001):
        parts.append(f"D-1\\MN-1-{i}:M{i};D-1\\WP-1-{i}-1:{i % 30 + 2};D-1\\FP-1-{i}-1:1;D-1\\FI-1-{i}-1:4;")
    t = parse_tmats("".join(parts))
    assert len(t.measurements) == 3000
    assert t.measurements["M77"].fragments == [Fragment(word_position=77 % 30 + 2, frame_position=1, frame_interval=4)]
    assert time.perf_counter() - start < 3.0


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_never_raise(data):
    t = parse_tmats(data)
    assert isinstance(t, Tmats)


tmats_alphabet = st.sampled_from(list("PDCRGB-\\:;0123456789NMFWIOSTK\n .xe") + ["inf", "nan", "0x", "-1", "9" * 30])


@settings(max_examples=300, deadline=None)
@given(st.lists(tmats_alphabet, max_size=200).map("".join))
def test_tmats_shaped_garbage_never_raises(text):
    t = parse_tmats(text)
    assert isinstance(t, Tmats)


code_part = st.sampled_from(
    ["TK1", "CDLN", "PDP", "CDT", "DLN", "MF1", "MF2", "MF\\N", "F1", "MFW1", "MFW2", "ISF1", "IDC1", "IDC4",
     "MN", "LT", "WP", "WI", "FP", "FI", "WFM", "DCN", "CO\\N", "CO", "PS3", "PS4", "MOT1", "BFM", "DCT"]
)
value = st.one_of(
    st.integers(-(10**6), 10**6).map(str),
    st.sampled_from(["", "inf", "-inf", "nan", "1e400", "0x1F", "0xZZ", "1.5", "FW", "DEC", "9" * 5000]),
    st.text(alphabet=st.characters(blacklist_characters=";", max_codepoint=0x2FF), max_size=10),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from("RPDC"),
            st.integers(0, 3),
            code_part,
            st.lists(st.integers(0, 3), max_size=4),
            value,
        ),
        max_size=40,
    )
)
def test_well_formed_codes_with_any_values_never_raise(attrs):
    text = "".join(
        f"{g}-{i}\\{c}{''.join(f'-{x}' for x in idx)}:{v};" for g, i, c, idx, v in attrs
    )
    t = parse_tmats(text)
    assert isinstance(t, Tmats)
    assert len(t.attributes) == len(attrs)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_mutated_real_tmats_never_raises(sample_dir, data):
    text = (sample_dir / "test.tmt").read_bytes()
    b = bytearray(text)
    for _ in range(data.draw(st.integers(1, 8), label="n")):
        i = data.draw(st.integers(0, len(b) - 1), label="at")
        op = data.draw(st.sampled_from(["flip", "insert", "delete", "semicolon", "colon"]), label="op")
        if op == "flip":
            b[i] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "insert":
            b[i:i] = data.draw(st.binary(min_size=1, max_size=20))
        elif op == "delete":
            del b[i : i + data.draw(st.integers(1, 40))]
        else:
            b[i:i] = b";" if op == "semicolon" else b":"
    t = parse_tmats(bytes(b))
    assert isinstance(t, Tmats)
    assert len(t.attributes) > 250  # most of the record survives a few mutations
