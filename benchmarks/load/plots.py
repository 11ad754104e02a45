"""Small PNGs of the load curves (matplotlib, the ``bench`` extra) from the benchmarks' JSON files.

    python -m benchmarks.load.plots --capacity /tmp/cap1.json /tmp/cap2.json /tmp/cap3.json \
        --bitrate /tmp/curve-bitrate.json --params /tmp/curve-params.json --out docs/bench

Writes ``p99-vs-consoles.png``, ``vehicle-p99-vs-consoles.png``, ``cpu-vs-consoles.png`` (every capacity ladder
step; medians over the runs that reached it), ``p99-vs-bitrate.png``,
``cpu-vs-bitrate.png``, ``p99-vs-params.png``, ``cpu-vs-params.png``, and
``curves.json`` with the plotted points, one line per server.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

COLORS = {"ours": "tab:blue", "naive": "tab:orange", "naive-node": "tab:green", "cluster": "tab:purple",
          "ours-record": "tab:cyan", "cluster-record": "tab:pink"}
LABELS = {"ours": "ours", "naive": "naive websockets", "naive-node": "naive node ws", "cluster": "ours, 2 edges",
          "ours-record": "ours, recording", "cluster-record": "ours, 2 edges, recording"}


def capacity_points(paths: list[str]) -> list[dict]:
    """(server, consoles) -> medians of p99, server CPU, deliveries/s over the capacity runs that measured it."""
    acc: dict[tuple[str, int], list[dict]] = {}
    for path in paths:
        for kind, lad in json.loads(Path(path).read_text())["ladders"].items():
            for r in lad["steps"]:
                if "error" not in r:
                    acc.setdefault((kind, r["consoles"]), []).append(r)
    out = []
    for (kind, n), rs in sorted(acc.items()):
        def med(f, rs=rs) -> float:
            return round(statistics.median(f(r) for r in rs), 2)

        out.append({"server": kind, "consoles": n, "runs": len(rs), "p99_ms": med(lambda r: r["latency_ms"]["p99"]),
                    "vehicle_p99_ms": med(lambda r: (r.get("vehicle_age_ms") or {}).get("p99", float("nan"))),
                    "server_cpu_pct": med(lambda r: r["server_cpu_pct"]),
                    "deliveries_per_s": med(lambda r: r["deliveries_per_s"]),
                    "sustained": sum(r["sustained"] for r in rs)})
    return out


def curve_points(paths: list[str]) -> tuple[str, list[dict]]:
    """The points of one sweep, possibly run in pieces (one file per value)."""
    axis, points = "", []
    for path in paths:
        d = json.loads(Path(path).read_text())
        axis = d["axis"]
        points += d["points"]
    return axis, points


def plot(points: list[dict], x: str, y: str, path: Path, *, xlabel: str, ylabel: str, title: str,
         hline: float | None = None, logy: bool = False) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.8, 3.0), dpi=100)
    for kind in dict.fromkeys(p["server"] for p in points):
        ps = sorted((p for p in points if p["server"] == kind and p.get(y) is not None), key=lambda p: p[x])
        ax.plot([p[x] for p in ps], [p[y] for p in ps], "o-", ms=3, color=COLORS.get(kind), label=LABELS.get(kind, kind))
    if hline is not None:
        ax.axhline(hline, color="grey", lw=0.8, ls="--")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.load.plots", description=__doc__.split("\n")[0])
    p.add_argument("--capacity", nargs="*", default=[], help="capacity JSON files (runs of one setting)")
    p.add_argument("--bitrate", nargs="*", default=[], help="curves JSON files of the bitrate sweep")
    p.add_argument("--params", nargs="*", default=[], help="curves JSON files of the params sweep")
    p.add_argument("--out", default="docs/bench")
    a = p.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    data: dict[str, list[dict]] = {}
    if a.capacity:
        pts = data["consoles"] = capacity_points(a.capacity)
        plot(pts, "consoles", "p99_ms", out / "p99-vs-consoles.png", xlabel="consoles (20 Hz, all parameters)",
             ylabel="p99 latency, ms", title="p99 (ingest_ns) vs consoles (1 Mb/s)", hline=100, logy=True)
        plot(pts, "consoles", "vehicle_p99_ms", out / "vehicle-p99-vs-consoles.png",
             xlabel="consoles (20 Hz, all parameters)", ylabel="p99 age since sample, ms",
             title="p99 by the vehicle clock vs consoles (1 Mb/s)", hline=100, logy=True)
        plot(pts, "consoles", "server_cpu_pct", out / "cpu-vs-consoles.png", xlabel="consoles (20 Hz, all parameters)",
             ylabel="server CPU, % of a core", title="server CPU vs consoles (1 Mb/s)")
    for paths, label in ((a.bitrate, "PCM bit rate, Mb/s"), (a.params, "parameters per console")):
        if not paths:
            continue
        axis, pts = curve_points(paths)
        if axis == "bitrate":
            pts = [{**q, "bitrate": q["bitrate"] / 1e6} for q in pts]
        data[axis] = pts
        n = pts[0]["consoles"] if pts else "?"
        plot(pts, axis, "p99_ms", out / f"p99-vs-{axis}.png", xlabel=label, ylabel="p99 latency, ms",
             title=f"p99 vs {label.split(',')[0]} ({n} consoles, 20 Hz)", hline=20)
        plot(pts, axis, "server_cpu_pct", out / f"cpu-vs-{axis}.png", xlabel=label, ylabel="server CPU, % of a core",
             title=f"server CPU vs {label.split(',')[0]} ({n} consoles)")
    keep = ("server", "consoles", "bitrate", "params", "runs", "p50_ms", "p99_ms", "vehicle_p99_ms", "server_cpu_pct",
            "deliveries_per_s", "sustained")
    (out / "curves.json").write_text(json.dumps(
        {k: [{f: q[f] for f in keep if f in q} for q in v] for k, v in data.items()}, indent=1) + "\n")
    print(f"plots in {out}: {', '.join(sorted(x.name for x in out.glob('*.png')))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
