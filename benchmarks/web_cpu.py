"""Chromium's CPU with the browser console drawing N strip charts at R Hz.

A real server process and the real simulator (1 Mb/s PCM); the console's layout is preset
in localStorage (N charts, the whole table, R Hz, a W-second window), and once the window
has filled, Chromium's CPU is measured over S seconds two ways:

- DevTools protocol ``Performance.getMetrics`` deltas of the page's renderer process:
  ``ProcessTime`` (CPU of the renderer process, all its threads), ``ThreadTime`` (its main
  thread) and ``TaskDuration`` (main-thread task time, with Script/Layout/RecalcStyle parts);
- /proc: user+system CPU of every Chromium process (browser, renderer, GPU/viz, utility).

Each as a percentage of one core over the wall time; the median of --runs runs. A mouse sweeps
the shared cursor over the charts while measuring (--no-cursor: not). With --history S the
server records S s first and the run also times a fresh page until its charts' history from
the recording is drawn. Usage
(after ``bash scripts/bootstrap.sh test``):

    .venv/bin/python benchmarks/web_cpu.py                # 20 charts, 20 Hz, 10 s window, 3 x 10 s
    .venv/bin/python benchmarks/web_cpu.py --window 60 --viewport 1920x1080
    .venv/bin/python benchmarks/web_cpu.py --window 3600 --history 120   # + time to history on screen
    .venv/bin/python benchmarks/web_cpu.py --compare /tmp/before   # A/B: runs alternate with
        # web/app/ and web/app.css taken from /tmp/before/web/ (e.g. the last commit's files)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from groundstation.simulator.flight import vehicle_parameters  # noqa: E402
from tests.browser import CHROMIUM, CHROMIUM_ARGS, SimThread, browser_missing  # noqa: E402
from tests.live import free_port, server  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _proc_tree(root_pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root_pid]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


def _chromium_pid(profile: str) -> int:
    """The browser process: the one with our --user-data-dir and no --type= (children have one)."""
    flag = f"--user-data-dir={profile}".encode()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if flag in cmd and not any(c.startswith(b"--type=") for c in cmd):
                return int(entry)
    raise RuntimeError("chromium process not found")


def _cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLK_TCK


def _serve_from(ctx, root: Path) -> None:
    """Serve the console's own files (web/app/, web/app.css) from another copy of web/."""
    def fulfil(route):
        rel = route.request.url.split("/web/", 1)[1].split("?")[0]
        route.fulfill(path=str(root / rel))
    ctx.route(re.compile(r".*/web/(app/.*|app\.css)(\?.*)?$"), fulfil)


# A cursor sweeping across the first chart (every chart draws it: the cursor is shared) and
# reading every chart's value out, as an engineer's mouse does.
CURSOR_JS = """() => { const over = document.querySelector('#charts .chart .u-over'); let k = 0;
    setInterval(() => { const r = over.getBoundingClientRect(); k = (k + 7) % Math.max(1, r.width);
      over.dispatchEvent(new MouseEvent('mousemove', {clientX: r.left + k, clientY: r.top + r.height / 2, bubbles: true}));
    }, 33); }"""


def measure(charts: int, rate: int, window: int, seconds: float, viewport: tuple[int, int],
            page_script: str = "", web: Path | None = None, cursor: bool = True, record: Path | None = None,
            recorded_s: float = 0.0) -> dict:
    from playwright.sync_api import sync_playwright

    names = [p.name for p in vehicle_parameters()]
    if charts > len(names):
        raise SystemExit(f"the simulator has {len(names)} parameters; --charts {charts} is too many")
    layout = {"table": names, "charts": names[:charts], "rate": rate, "window": window}
    port = free_port()
    profile = tempfile.mkdtemp(prefix="gs-bench-")
    serve = ("--http", f"127.0.0.1:{port}") + (("--record", str(record)) if record else ())
    with server(*serve) as srv, SimThread(srv.udp_port), sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                                    headless=True,
                                                    viewport={"width": viewport[0], "height": viewport[1]})
        try:
            if web is not None:
                _serve_from(ctx, web)
            ctx.add_init_script(f"localStorage.setItem('gs.layout.v1.operator', {json.dumps(json.dumps(layout))});")
            page = ctx.pages[0] if ctx.pages else ctx.new_page()
            history_ms = None
            if record:  # a recording of recorded_s first; then a fresh page: how long until its history is drawn
                time.sleep(recorded_s)
                t_open = time.monotonic()
            page.goto(srv.http_url + "/")
            page.wait_for_function("document.querySelectorAll('#charts .chart canvas').length === %d" % charts,
                                   timeout=15_000)
            page.wait_for_function("gs.store.frames > 0", timeout=15_000)
            if record:
                page.wait_for_function("gs.history.stats.done > 0", timeout=60_000, polling=20)
                page.evaluate("() => new Promise(requestAnimationFrame)")  # drawn
                history_ms = round(1000 * (time.monotonic() - t_open))
                history_span = page.evaluate("(() => { const s = gs.store.series.get(gs.layout.charts[0]); "
                                             "return s.t[s.end - 1] - s.t[s.start]; })()")
            if cursor:
                page.evaluate(CURSOR_JS)
            if page_script:  # for experiments: e.g. "gs.table.render = () => {}"
                page.evaluate(page_script)
            time.sleep(min(window, 20) + 2)  # the window fills (or 20 s of it): steady state
            cdp = ctx.new_cdp_session(page)
            cdp.send("Performance.enable")
            pids = _proc_tree(_chromium_pid(profile))

            def sample():
                m = {x["name"]: x["value"] for x in cdp.send("Performance.getMetrics")["metrics"]}
                js = page.evaluate("({draws: gs.stats.draws, frames: gs.store.frames, renders: gs.stats.renders})")
                return time.monotonic(), m, js, _cpu_seconds(pids)

            t0, m0, js0, cpu0 = sample()
            time.sleep(seconds)
            t1, m1, js1, cpu1 = sample()
            wall = t1 - t0

            def pct(key):
                return round(100 * (m1[key] - m0[key]) / wall, 1)

            visible = page.evaluate("""[...document.querySelectorAll('#charts .chart')].filter(c => {
                const r = c.getBoundingClientRect(); return r.bottom > 0 && r.top < innerHeight; }).length""")
            return {
                "charts": charts, "visible_charts": visible, "rate_hz": rate, "window_s": window,
                "seconds": round(wall, 2), "viewport": f"{viewport[0]}x{viewport[1]}",
                "chromium": page.evaluate("navigator.userAgent").split("Chrome/")[-1].split()[0],
                "renderer_process_pct": pct("ProcessTime"),
                "renderer_main_thread_pct": pct("ThreadTime"),
                "task_pct": pct("TaskDuration"),
                "script_pct": pct("ScriptDuration"),
                "layout_style_pct": round(pct("LayoutDuration") + pct("RecalcStyleDuration"), 1),
                "all_chromium_processes_pct": round(100 * (cpu1 - cpu0) / wall, 1),
                "chart_draws_per_s": round((js1["draws"] - js0["draws"]) / wall, 1),
                "data_frames_per_s": round((js1["frames"] - js0["frames"]) / wall, 1),
                "animation_frames_per_s": round((js1["renders"] - js0["renders"]) / wall, 1),
                "points_per_chart": page.evaluate("gs.store.series.get(gs.layout.charts[0]).length"),
                "cursor": cursor,
                **({"history_on_screen_ms": history_ms, "history_span_s": round(history_span, 1),
                    "history_rows": page.evaluate("gs.history.stats.rows")} if record else {}),
            }
        finally:
            ctx.close()


SUMMARY = ("renderer_process_pct", "renderer_main_thread_pct", "task_pct", "all_chromium_processes_pct",
           "chart_draws_per_s")
HISTORY = ("history_on_screen_ms",)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--charts", type=int, default=20)
    ap.add_argument("--rate", type=int, default=20, choices=[1, 2, 5, 10, 20, 50])
    ap.add_argument("--window", type=int, default=10, choices=[10, 30, 60, 120, 300, 600, 1800, 3600])
    ap.add_argument("--no-cursor", action="store_true", help="no mouse sweeping the shared cursor over the charts")
    ap.add_argument("--history", type=float, default=0.0, metavar="S",
                    help="record S seconds first, then time a fresh page until the window's history is drawn")
    ap.add_argument("--seconds", type=float, default=10.0, help="measured seconds per run")
    ap.add_argument("--runs", type=int, default=3, help="fresh server, simulator and browser per run")
    ap.add_argument("--viewport", default="1920x1900", help="WIDTHxHEIGHT (1920x1900 shows all 20 charts)")
    ap.add_argument("--compare", metavar="DIR", type=Path,
                    help="also measure the console files of DIR/web/ (runs alternate), e.g. the last commit's")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    missing = browser_missing()
    if missing:
        print(f"web_cpu: {missing}", file=sys.stderr)
        return 2
    w, h = (int(x) for x in args.viewport.split("x"))
    runs, other = [], []
    for i in range(args.runs):
        for label, web, out in [("this", None, runs)] + ([("compare", args.compare / "web", other)] if args.compare else []):
            with tempfile.TemporaryDirectory(prefix="gs-bench-rec-") as rec:
                r = measure(args.charts, args.rate, args.window, args.seconds, (w, h), web=web,
                            cursor=not args.no_cursor, record=Path(rec) if args.history else None,
                            recorded_s=args.history)
            out.append(r)
            if not args.json:
                print(f"run {i + 1} {label}: " + "  ".join(f"{k}={r[k]}" for k in SUMMARY), flush=True)
    keys = SUMMARY + (HISTORY if args.history else ())
    median = {k: statistics.median(r[k] for r in runs) for k in keys}
    if other and not args.json:
        for k in SUMMARY:
            print(f"compare {k:20s} median {statistics.median(r[k] for r in other)}"
                  f"  (runs: {', '.join(str(r[k]) for r in other)})")
    if args.json:
        print(json.dumps({"runs": runs, "median": median, "compare": other}))
    else:
        print()
        for k, v in runs[-1].items():
            if k not in SUMMARY:
                print(f"{k:28s} {v}")
        for k in keys:
            print(f"{k:28s} median {median[k]}  (runs: {', '.join(str(r[k]) for r in runs)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
