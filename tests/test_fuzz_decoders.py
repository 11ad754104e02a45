"""Fuzzing the Chapter 10 stream reader with random bytes and mutated real packets.

Properties, for one-shot and chunked feeding alike:
  * ``PacketReader`` never raises and never hangs (bounded examples, per-example deadline);
  * every input byte is accounted for: events tile the input in order, so the sum
    of packet lengths and error lengths equals the input length;
  * chunked feeding gives exactly the one-shot events;
  * every packet reported is a valid packet on its own.
"""

from __future__ import annotations

import contextlib
import signal
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from telemetry_formats.ch10.header import HEADER_SIZE, TIME_CH4, TIME_ERTC, TIME_IEEE1588, parse_header
from telemetry_formats.ch10.packet import Packet, build_packet, parse_packet
from telemetry_formats.ch10.reader import DecodeError, PacketReader, iter_packets
from telemetry_formats.checksum import sum16

FUZZ = settings(
    max_examples=300,
    deadline=2000,  # ms per example: a hang or quadratic blow-up fails the test
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

MAX_REAL_PACKET = 3000  # keep examples small so the file runs in seconds


# --------------------------------------------------------------------------- corpus


def _synthetic_packets() -> list[bytes]:
    out = []
    sec = [
        (TIME_CH4, {"high_time": 1, "low_time": 2, "microseconds": 3}),
        (TIME_IEEE1588, {"nanoseconds": 999, "seconds": 1_700_000_000}),
        (TIME_ERTC, {"ertc": 123456789}),
    ]
    for cks in range(4):
        for i, (fmt, t) in enumerate(sec):
            body = bytes((cks * 31 + i * 7 + j) & 0xFF for j in range(4 + 5 * i + cks))
            out.append(
                build_packet(
                    channel_id=10 + cks,
                    data_type=0x09,
                    body=body,
                    sequence_number=i,
                    rtc=1000 * i,
                    checksum_type=cks,
                    secondary_time=t,
                    secondary_time_format=fmt,
                )
            )
        out.append(build_packet(channel_id=20 + cks, data_type=0x11, body=b"\x01\x00\x00\x00" + b"\x12" * 6, checksum_type=cks))
    return out


@pytest.fixture(scope="module")
def corpus(sample_dir) -> list[bytes]:
    """Small real packets from each recording (one per channel and type) plus
    synthetic ones with secondary headers, which the recordings lack."""
    packets: dict[tuple, bytes] = {}
    for name in ("pcm.c10", "discrete.c10", "bad.c10"):
        data = (sample_dir / name).read_bytes()
        for e in iter_packets(data):
            if isinstance(e, Packet) and len(e.raw) <= MAX_REAL_PACKET:
                packets.setdefault((name, e.channel_id, e.data_type), bytes(e.raw))
    assert len(packets) >= 10
    return list(packets.values()) + _synthetic_packets()


# --------------------------------------------------------------------------- checks


def pick(data, corpus: list[bytes], lo: int, hi: int) -> list[bytes]:
    """Draw packets by index (keeps failure reports short)."""
    idx = data.draw(st.lists(st.integers(0, len(corpus) - 1), min_size=lo, max_size=hi), label="packet indices")
    return [corpus[i] for i in idx]


def norm(events) -> list[tuple]:
    return [
        ("E", e.offset, e.length, e.channel_id, e.reason, e.data)
        if isinstance(e, DecodeError)
        else ("P", e.offset, bytes(e.raw))
        for e in events
    ]


@contextlib.contextmanager
def watchdog(seconds: float = 10.0):
    """Turn a hang into a failure (the hypothesis deadline only measures, it
    cannot interrupt an endless loop). Unix main thread only; a no-op elsewhere."""
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expired(signum, frame):
        raise TimeoutError(f"decoder still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def check_stream(stream: bytes, cuts: list[int]) -> list:
    """Run every property on ``stream``; return the one-shot events."""
    with watchdog():
        return _check_stream(stream, cuts)


def _check_stream(stream: bytes, cuts: list[int]) -> list:
    one_shot = list(iter_packets(stream))
    pos = 0
    for e in one_shot:
        assert e.offset == pos
        if isinstance(e, DecodeError):
            assert e.length > 0
            kept = e.length if e.is_packet else min(e.length, PacketReader.MAX_ERROR_BYTES)  # damaged packets whole
            assert e.data == stream[e.offset : e.offset + kept]
            pos += e.length
        else:
            assert bytes(e.raw) == stream[pos : pos + len(e.raw)]
            alone = parse_packet(bytes(e.raw), flag_checksum=True)  # valid on its own
            assert bytes(alone.raw) == bytes(e.raw) and alone.checksum_error == e.checksum_error
            pos += len(e.raw)
    assert pos == len(stream)
    assert sum(e.length if isinstance(e, DecodeError) else len(e.raw) for e in one_shot) == len(stream)

    reader = PacketReader()
    chunked = []
    prev = 0
    for cut in sorted(set(cuts)):
        chunked += reader.feed(stream[prev:cut])
        assert reader.consumed <= cut
        prev = cut
    chunked += reader.feed(stream[prev:], final=True)
    assert reader.consumed == len(stream)
    assert norm(chunked) == norm(one_shot)
    return one_shot


def cuts_for(data, stream: bytes):
    if not stream:
        return []
    return data.draw(
        st.one_of(
            st.lists(st.integers(0, len(stream)), max_size=25),
            st.integers(1, 64).map(lambda k: list(range(k, len(stream), k))),
        ),
        label="cuts",
    )


# --------------------------------------------------------------------------- random bytes


@FUZZ
@given(st.binary(max_size=3000), st.data())
def test_random_bytes(stream, data):
    events = check_stream(stream, cuts_for(data, stream))
    assert all(isinstance(e, DecodeError) for e in events) or stream.count(b"\x25\xeb")


sync_rich = st.lists(
    st.one_of(
        st.just(b"\x25\xeb"),
        st.just(b"\x25"),
        st.binary(min_size=1, max_size=30),
        st.integers(0, 2**32 - 1).map(lambda v: v.to_bytes(4, "little")),
    ),
    max_size=60,
).map(b"".join)


@FUZZ
@given(sync_rich, st.data())
def test_sync_rich_random_bytes(stream, data):
    check_stream(stream, cuts_for(data, stream))


# --------------------------------------------------------------------------- mutated packets


def fix_header_checksum(b: bytearray, at: int) -> None:
    """Recompute the header checksum at ``at`` so the reader trusts the header."""
    if at + HEADER_SIZE <= len(b):
        b[at + 22 : at + 24] = sum16(bytes(b[at : at + 22])).to_bytes(2, "little")


def mutate(data, packets: list[bytes]) -> bytes:
    """Concatenate packets, then apply a few random mutations."""
    starts = []
    b = bytearray()
    for p in packets:
        starts.append(len(b))
        b += p
    n_mut = data.draw(st.integers(0, 4), label="n_mut")
    for _ in range(n_mut):
        kind = data.draw(
            st.sampled_from(
                ["flip", "truncate", "length", "length_fixed", "flags_fixed", "insert", "delete", "sync", "dup_header"]
            ),
            label="kind",
        )
        if not b:
            b += data.draw(st.binary(min_size=1, max_size=50))
            continue
        i = data.draw(st.integers(0, len(b) - 1), label="at")
        if kind == "flip":
            b[i] ^= 1 << data.draw(st.integers(0, 7))
        elif kind == "truncate":
            del b[i:]
        elif kind in ("length", "length_fixed"):
            at = data.draw(st.sampled_from(starts), label="packet") if starts else 0
            field = data.draw(st.sampled_from([4, 8]), label="field")  # packet / data length
            value = data.draw(
                st.one_of(
                    st.integers(0, 2**32 - 1),
                    st.integers(0, 64),
                    st.integers(-8, 8).map(lambda d: max(0, int.from_bytes(b[at + field : at + field + 4] or b"\0", "little") + d)),  # noqa: B023 - drawn at once
                ),
                label="value",
            )
            if at + field + 4 <= len(b):
                b[at + field : at + field + 4] = (value & 0xFFFFFFFF).to_bytes(4, "little")
                if kind == "length_fixed":
                    fix_header_checksum(b, at)
        elif kind == "flags_fixed" and starts:
            # any flags (secondary header on/off, reserved time format 3, other
            # checksum type) behind a header the reader will trust
            at = data.draw(st.sampled_from(starts), label="packet")
            if at + HEADER_SIZE <= len(b):
                b[at + 14] = data.draw(st.integers(0, 255), label="flags")
                fix_header_checksum(b, at)
        elif kind == "insert":
            b[i:i] = data.draw(st.binary(min_size=1, max_size=100), label="garbage")
        elif kind == "delete":
            del b[i : i + data.draw(st.integers(1, 50))]
        elif kind == "sync":
            b[i:i] = b"\x25\xeb"
        elif kind == "dup_header" and starts:
            at = data.draw(st.sampled_from(starts))
            b[i:i] = b[at : at + HEADER_SIZE]  # a valid header whose packet is missing
    return bytes(b)


@FUZZ
@given(st.data())
def test_mutated_real_packets(corpus, data):
    picks = pick(data, corpus, 1, 6)
    stream = mutate(data, picks)
    check_stream(stream, cuts_for(data, stream))


@FUZZ
@given(st.data())
def test_intact_packets_survive_garbage_between_them(corpus, data):
    """Garbage with no 0x25 byte cannot hold a sync, so every packet is recovered."""
    picks = pick(data, corpus, 1, 6)
    stream = b""
    expected = []
    for p in picks:
        junk = data.draw(st.binary(max_size=80).map(lambda g: g.replace(b"\x25", b"\x24")), label="junk")
        stream += junk
        expected.append((len(stream), p))
        stream += p
    stream += data.draw(st.binary(max_size=30).map(lambda g: g.replace(b"\x25", b"\x24")), label="tail")
    events = check_stream(stream, cuts_for(data, stream))
    got = [(e.offset, bytes(e.raw)) for e in events if isinstance(e, Packet)]
    assert got == expected
    for e in events:
        if isinstance(e, DecodeError):
            assert e.channel_id is None
            assert "sync" in e.reason or "truncated header at end" in e.reason


@FUZZ
@given(st.data())
def test_single_bit_flip_is_confined(corpus, data):
    """One flipped bit inside a packet with a data checksum flags that packet only, and
    loses nothing (a flip in a length field can make the reader trust a wrong length,
    so the flipped bit is kept out of the header here; header flips are in the test above)."""
    picks = pick(data, [p for p in corpus if p[14] & 3], 2, 5)  # flags bits 1-0: has a data checksum
    target = data.draw(st.integers(0, len(picks) - 1), label="target")
    p = bytearray(picks[target])
    i = data.draw(st.integers(parse_header(bytes(p)).body_offset, len(p) - 1), label="bit_at")
    p[i] ^= 1 << data.draw(st.integers(0, 7))
    stream_parts = list(picks)
    stream_parts[target] = bytes(p)
    stream = b"".join(stream_parts)
    events = check_stream(stream, cuts_for(data, stream))
    assert all(isinstance(e, Packet) for e in events)
    assert [bytes(e.raw) for e in events] == stream_parts
    flagged = [k for k, e in enumerate(events) if e.checksum_error]
    assert flagged == [target] and "data checksum mismatch" in events[target].checksum_error
