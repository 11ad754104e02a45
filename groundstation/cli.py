"""The ``groundstation`` command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from groundstation.auth import register_token_command
from groundstation.bus_tables import write_bus_tables
from groundstation.capture import CaptureError, CaptureReader
from groundstation.capture_writer import register_capture_command
from groundstation.export import register_export_command
from groundstation.replay import register_replay_command
from groundstation.run import add_run_commands
from telemetry_formats.ch10.reader import PacketReader
from telemetry_formats.filetype import C10, PCAP, PCAPNG, SNIFF_BYTES, sniff
from telemetry_formats.inspect import RecordingInspector

__all__ = ["main"]

READ_CHUNK = 1 << 20


class NotARecording(Exception):
    """The file is neither a Chapter 10 file nor a capture: the message names what it is."""


def inspect_file(path: Path, year: int, *, strict_checksums: bool = False) -> dict:
    """Read a .c10 file (in chunks) or a pcap/pcapng capture and return the inspector's report.

    What the file is comes from its content (``telemetry_formats.filetype.sniff``);
    a capture's report has a ``capture`` section (frames, flows, transfer formats,
    problems by frame number). Raises ``NotARecording`` for any other file.
    ``strict_checksums``: packets whose data checksum fails are refused, as errors,
    instead of decoded and reported.
    """
    with path.open("rb") as f:
        kind = sniff(f.read(SNIFF_BYTES))
    insp = RecordingInspector(year=year)
    capture = None
    if kind.kind in (PCAP, PCAPNG):
        try:
            capture = CaptureReader(path)
            insp.feed(capture.events())
        except CaptureError as exc:
            raise NotARecording(str(exc)) from None
    elif kind.kind == C10:
        reader = PacketReader(strict_checksums=strict_checksums)
        with path.open("rb") as f:
            while chunk := f.read(READ_CHUNK):
                insp.feed(reader.feed(chunk))
        insp.feed(reader.feed(b"", final=True))
    else:
        raise NotARecording(f"{path}: {kind.description}, not a Chapter 10 file or a pcap/pcapng capture")
    report = insp.report()
    report["file"] = str(path)
    report["input"] = kind.kind
    if capture is not None:
        report["capture"] = capture.report()
    report["strict_checksums"] = strict_checksums
    return report


def _print_capture(c: dict, w) -> None:
    formats = ", ".join(f"format {k}: {v:,}" for k, v in c["transfer_formats"].items()) or "none"
    w(f"Capture ({c['container']}, {c['link_type']}): {c['frames']:,} frames, {c['udp_datagrams']:,} UDP datagrams "
      f"({c['ip_reassembled']:,} reassembled from {c['ip_fragments']:,} IP fragments), {c['packets']:,} Chapter 10 "
      f"packets; transfer {formats}; {c['sequence_gaps']} sequence gaps ({c['lost_datagrams']} datagrams lost), "
      f"{c['partials_dropped']} partial packets dropped, {c['not_udp_frames']:,} frames not UDP\n")
    for f in c["flows"]:
        w(f"  {f['source']} -> {f['destination']}: {f['datagrams']:,} datagrams, {f['packets']:,} packets\n")
    for f in c["other_udp_flows"]:
        w(f"  {f['source']} -> {f['destination']}: {f['datagrams']:,} datagrams, not Chapter 10\n")
    for p in c["problems"][:50]:
        w(f"  frame {p['frame']}: {p['reason']}\n")
    if c["problem_count"] > 50:
        w(f"  ... {c['problem_count'] - 50} more capture problems\n")


# Chapter 10 PCM F1 packing modes (the TMATS R-x\\PDP code of the channel)
PCM_PACKING = {"TM": "throughput: the raw bit stream, frames found by their sync pattern",
               "PFS": "packed with frame sync: words back to back, each minor frame aligned",
               "UN": "unpacked: each word in its own 16-bit slot"}


def print_report(r: dict, out=sys.stdout, year_known: bool = False) -> None:
    w = out.write
    w(f"{r['file']}: {r['bytes']:,} bytes, {r['packets']:,} packets, {r['error_count']} errors\n")
    if r.get("capture"):
        _print_capture(r["capture"], w)
    n_bad = r.get("data_checksum_errors", 0)
    if n_bad:
        how = ("refused (--strict-checksums)" if r.get("strict_checksums")
               else "decoded all the same (--strict-checksums refuses them)")
        w(f"WARNING: {n_bad} packet{'s' if n_bad != 1 else ''} with a bad data checksum, {how}; see Errors\n")
    t = r.get("tmats")
    if t:
        w(f"TMATS: IRIG 106-{t['irig106_version'] or '?'}, program {t['program'] or '-'}, "
          f"{t['attributes']} attributes, {t['recorder_channels']} recorder channels, "
          f"{len(t['pcm_links'])} PCM links, {t['measurements']} measurements, {t['conversions']} conversions\n")
        if t.get("data_checksum_error"):
            w(f"  WARNING: the TMATS packet at offset {t['offset']} has a bad data checksum "
              f"({t['data_checksum_error']}); its text parses cleanly and is used\n")
        for link in t["pcm_links"]:
            rate = f"{link['bit_rate'] / 1e6:g} Mb/s" if link["bit_rate"] else "? b/s"
            w(f"  PCM {link['name']!r}: {rate}, {link['words_per_minor']} words x {link['word_length']} bits, "
              f"{link['bits_per_minor']} bits/minor, {link['minor_frames']} minor/major, sync {link['sync']}\n")
    tm = r["time"]
    if tm["first"]:
        f = tm["first"]
        w(f"Time: first time packet day {f['day_of_year'] or '-'} {f['time_of_day']}, "
          f"RTC correlated, {tm['time_jumps']} time jumps\n")
    w("\n")
    header = f"{'chan':>5} {'type':<22} {'packets':>8} {'bytes':>11} {'span s':>9} {'cksum':>5} {'gaps':>5}  pcm\n"
    w(header)
    packings: set[str] = set()
    for c in r["channels"]:
        types = " + ".join(d["short"] for d in c["data_types"])
        span = f"{c['time_span_s']:.3f}" if c["time_span_s"] is not None else "-"
        pcm = ""
        if "pcm" in c:
            p = c["pcm"]
            pcm = (p["note"] if "note" in p else
                   f"{p['link']!r} {p['packing'] or '?'} {p['minor_frames']} frames, {p['sync_errors']} sync errors, "
                   f"{p['sync_losses']} sync losses"
                   + (f", {p['unsynced_bits']:,} bits without sync" if p["unsynced_bits"] else ""))
            packings.add(p.get("packing") or "")
        w(f"{c['channel_id']:>5} {types[:22]:<22} {c['packets']:>8} {c['bytes']:>11,} {span:>9} "
          f"{c['data_checksum_errors']:>5} {c['sequence_gaps']:>5}  {pcm}\n")
    legend = [f"{k} = {PCM_PACKING[k]}" for k in sorted(packings) if k in PCM_PACKING]
    if legend:
        w(f"  pcm: the TMATS link, then its packing ({'; '.join(legend)})\n")
    write_bus_tables(r, w)
    if r["errors"]:
        w("\nErrors:\n")
        for e in r["errors"][:50]:
            ch = f" channel {e['channel_id']}" if e["channel_id"] is not None else ""
            w(f"  offset {e['offset']}{ch}: {e['reason']} ({e['length']} bytes)\n")
        if len(r["errors"]) > 50:
            w(f"  ... {len(r['errors']) - 50} more\n")


def _json_default(obj):
    """numpy scalars and the like as plain numbers."""
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def cmd_inspect(args: argparse.Namespace) -> int:
    path = Path(args.file)
    if not path.is_file():
        print(f"groundstation inspect: {path}: no such file", file=sys.stderr)
        return 2
    try:
        report = inspect_file(path, args.year or 1970, strict_checksums=args.strict_checksums)
    except NotARecording as exc:
        print(f"groundstation inspect: {exc}", file=sys.stderr)
        return 2
    if args.json:
        json.dump(report, sys.stdout, indent=2, default=_json_default)
        sys.stdout.write("\n")
    else:
        print_report(report, year_known=args.year is not None)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="groundstation", description="Flight-test telemetry ground station")
    sub = parser.add_subparsers(dest="command", required=True)
    add_run_commands(sub)
    register_token_command(sub)
    register_export_command(sub)
    register_replay_command(sub)
    register_capture_command(sub)
    p = sub.add_parser("inspect", help="per-channel statistics of a Chapter 10 recording or a pcap/pcapng capture")
    p.add_argument("file", help="a .c10 file, or a pcap/pcapng capture of a Chapter 10 UDP stream")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--year", type=int, help="year for day-of-year time packets (default: unknown)")
    p.add_argument("--strict-checksums", action="store_true",
                   help="refuse packets whose data checksum fails (default: decode them and report the error)")
    p.set_defaults(func=cmd_inspect)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:  # output piped into head & co.
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
