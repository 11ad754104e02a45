"""The uplink command packet: build/parse symmetry, CRC, and hostile bytes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from telemetry_formats.checksum import crc16_ccitt
from telemetry_formats.uplink import UplinkError, decode_uplink, encode_uplink

args_st = st.lists(
    st.one_of(
        st.tuples(st.just("u32"), st.integers(0, 2**32 - 1)),
        st.tuples(st.just("i32"), st.integers(-(2**31), 2**31 - 1)),
        st.tuples(st.just("f32"), st.floats(width=32, allow_nan=False)),
    ),
    max_size=8,
)


@given(st.integers(0, 2**32 - 1), st.integers(0, 255), args_st, st.booleans())
def test_round_trip(seq, opcode, args, armed):
    cmd = decode_uplink(encode_uplink(seq, opcode, args, armed))
    assert (cmd.sequence, cmd.opcode, cmd.armed) == (seq, opcode, armed)
    assert [k for k, _ in cmd.args] == [k for k, _ in args]
    for (_, got), (_, want) in zip(cmd.args, args):
        assert got == pytest.approx(want)


def test_layout_is_documented_big_endian_with_crc():
    p = encode_uplink(7, 1, [("u32", 2_000_000)])
    assert p[:2] == b"GS" and p[2] == 1 and p[3] == 0
    assert p[4:8] == (7).to_bytes(4, "big") and p[8] == 1 and p[9] == 1
    assert p[10] == 1 and p[11:15] == (2_000_000).to_bytes(4, "big")
    assert int.from_bytes(p[-2:], "big") == crc16_ccitt(p[:-2])


@pytest.mark.parametrize("mutate, code", [
    (lambda p: p[:-1] + bytes([p[-1] ^ 1]), "bad_crc"),
    (lambda p: b"XX" + p[2:], "malformed"),
    (lambda p: p[:5], "malformed"),
    (lambda p: p + b"\0", "malformed"),
    (lambda p: p * 400, "too_long"),
])
def test_bad_packets_are_refused_with_a_reason(mutate, code):
    with pytest.raises(UplinkError) as info:
        decode_uplink(mutate(encode_uplink(1, 3, [("u32", 1)])))
    assert info.value.code == code


@given(st.binary(max_size=300))
def test_random_bytes_never_raise_anything_else(data):
    try:
        decode_uplink(data)
    except UplinkError:
        pass


def test_unknown_argument_tag_is_malformed():
    from telemetry_formats.checksum import crc16_ccitt

    body = encode_uplink(1, 1, [("u32", 5)])[:10] + bytes([9])  # one argument whose tag 9 does not exist
    with pytest.raises(UplinkError) as info:
        decode_uplink(body + crc16_ccitt(body).to_bytes(2, "big"))
    assert info.value.code == "malformed" and "tag 9" in str(info.value)
