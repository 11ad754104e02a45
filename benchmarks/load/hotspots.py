"""Top hot spots from a py-spy ``raw`` (collapsed stacks) profile.

    py-spy record --pid PID -d 8 -r 200 --nonblocking -f raw -o /tmp/server.txt
    python -m benchmarks.load.hotspots /tmp/server.txt [--top 25]

Prints the functions with the most samples on top of the stack (self) and in
the stack (inclusive), as a percentage of the busy samples: py-spy with
``--nonblocking`` also samples the event loop waiting in ``select``; those
samples are counted apart (``idle``) and left out of the percentages.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter

_LINE = re.compile(r"^(.*) (\d+)$")


def _name(frame: str) -> str:
    # "function (path/file.py:123)" -> "function (file.py)"
    m = re.match(r"^(.*?) \((.*?)(?::\d+)?\)$", frame.strip())
    if not m:
        return frame.strip()
    fn, path = m.groups()
    parts = path.replace("\\", "/").split("/")
    short = "/".join(parts[-2:]) if "site-packages" in path or "groundstation" in path else parts[-1]
    return f"{fn} ({short})"


_IDLE = ("EpollSelector.select (selectors.py)", "select (selectors.py)", "PollSelector.select (selectors.py)")


def load(path: str) -> tuple[Counter, Counter, int, int]:
    self_c: Counter = Counter()
    incl_c: Counter = Counter()
    total = idle = 0
    with open(path) as f:
        for line in f:
            m = _LINE.match(line.rstrip("\n"))
            if not m:
                continue
            stack, n = m.group(1), int(m.group(2))
            frames = [_name(x) for x in stack.split(";") if x and not x.startswith("process ")
                      and not x.startswith("thread ")]
            if not frames:
                continue
            if frames[-1] in _IDLE:
                idle += n
                continue
            total += n
            self_c[frames[-1]] += n
            for fr in set(frames):
                incl_c[fr] += n
    return self_c, incl_c, total, idle


def report(path: str, top: int = 20) -> str:
    self_c, incl_c, total, idle = load(path)
    if not total:
        return f"{path}: no busy samples"
    out = [f"{path}: {total} busy samples ({100 * total / (total + idle):.0f} % of all), {idle} idle in select",
           "", "self %   function"]
    out += [f"{100 * n / total:6.1f}   {fn}" for fn, n in self_c.most_common(top)]
    out += ["", "incl %   function"]
    out += [f"{100 * n / total:6.1f}   {fn}" for fn, n in incl_c.most_common(top)]
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.load.hotspots", description=__doc__.split("\n")[0])
    p.add_argument("path")
    p.add_argument("--top", type=int, default=20)
    a = p.parse_args(argv)
    print(report(a.path, a.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
