"""Text tables of an inspect report's bus channels: 1553 messages and ARINC-429 labels, one table per channel."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["write_bus_tables"]

MAX_LATEST_WORDS = 8  # data words shown per 1553 message


def _rate(r: dict) -> str:
    return f"{r['rate_hz']:.2f}" if r["rate_hz"] is not None else "-"


def _errors(errors: dict[str, int]) -> str:
    return ", ".join(f"{n} {reason.replace('_', ' ')}" for reason, n in errors.items()) or "none"


def _message_name(r: dict) -> str:
    if r["mode_code"] is not None:
        return f"mode code {r['mode_code']}"
    if r["rt_to_rt"]:
        return f"RT-to-RT from RT {r['rt_to_rt']['rt']} SA {r['rt_to_rt']['subaddress']}"
    return ""


def write_bus_tables(report: dict, w: Callable[[str], object]) -> None:
    """Write a table per 1553 and ARINC-429 channel of ``report`` (``RecordingInspector.report()``)."""
    for c in report["channels"]:
        m = c.get("mil1553")
        if m:
            w(f"\nChannel {c['channel_id']}: MIL-STD-1553, {m['count']:,} messages, errors: {_errors(m['errors'])}\n")
            w(f"  {'RT':>2} {'T/R':>3} {'SA':>2} {'WC':>2} {'count':>7} {'rate Hz':>9} {'errors':>6} {'bus B':>5}  latest data\n")
            for r in m["messages"]:
                wc = r["word_count"] if r["word_count"] is not None else "-"
                data = " ".join(f"{x:04X}" for x in r["latest"]["data"][:MAX_LATEST_WORDS])
                if len(r["latest"]["data"]) > MAX_LATEST_WORDS:
                    data += " ..."
                note = _message_name(r)
                w(f"  {r['rt']:>2} {r['tr']:>3} {r['subaddress']:>2} {wc:>2} {r['count']:>7,} {_rate(r):>9} "
                  f"{r['error_count']:>6} {r['bus_b']:>5}  {data}{'  (' + note + ')' if note else ''}\n")
            _problems(m, w)
        a = c.get("arinc429")
        if a:
            w(f"\nChannel {c['channel_id']}: ARINC-429, {a['count']:,} words, errors: {_errors(a['errors'])}\n")
            w(f"  {'bus':>3} {'label':>5} {'SDI':>3} {'count':>7} {'rate Hz':>9} {'SSM 0/1/2/3':>15} {'parity':>6}  latest data\n")
            for r in a["labels"]:
                ssm = "/".join(str(r["ssm"].get(str(v), 0)) for v in range(4))
                parity = r["errors"].get("parity error", 0) + r["errors"].get("parity check failed", 0)
                w(f"  {r['bus']:>3} {r['label_octal']:>5} {r['sdi']:>3} {r['count']:>7,} {_rate(r):>9} {ssm:>15} "
                  f"{parity:>6}  {r['latest']['data']:05X}\n")
            _problems(a, w)


def _problems(section: dict, w: Callable[[str], object]) -> None:
    for p in section["problems"]:
        w(f"  ! {p}\n")
    more = section["problem_count"] - len(section["problems"])
    if more > 0:
        w(f"  ! ... {more} more\n")
