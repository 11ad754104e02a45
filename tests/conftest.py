"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

SAMPLE_DIR = Path(__file__).resolve().parent / "data" / "ch10"  # the repo's copy (see its SOURCES.md, LICENSE)


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    """Directory of the real Chapter 10 recordings the repository carries (tests/data/ch10)."""
    assert SAMPLE_DIR.is_dir(), f"sample data missing from the repository: {SAMPLE_DIR}"
    return SAMPLE_DIR


def recording_time_problems(folder: Path) -> list[str]:
    """Every ``rates/*/time`` dataset under ``folder`` whose times do not strictly increase, every row
    with no value at all (in PCM groups), and every rate group whose segments overlap in time (one line each)."""
    import h5py
    import numpy as np

    problems: list[str] = []
    spans: dict[tuple[str, str, str], list[tuple[int, int, str]]] = {}  # (folder, session, parameter) -> spans
    for path in sorted(Path(folder).rglob("*.h5")):
        try:
            fh = h5py.File(path, "r")
        except OSError:  # a damaged file a test made on purpose: recovery tests read those
            continue
        with fh:
            for name, g in fh.get("rates", {}).items():
                t = g["time"][:]
                if len(t) > 1 and not (np.diff(t) > 0).all():
                    i = int(np.argmax(np.diff(t) <= 0))
                    problems.append(f"{path.name} rates/{name}/time: row {i + 1} at {t[i + 1]} after {t[i]}")
                v = g["values"][:]
                sources = {x.decode() if isinstance(x, bytes) else str(x)
                           for x in np.atleast_1d(g.attrs.get("source", g["values"].attrs.get("source", ["pcm"])))}
                # A bus group has a row per message (or ARINC word) that came: a row of NaN there is a
                # message whose every value was invalid (SSM no computed data, block status errors).
                bus_group = bool(sources) and "pcm" not in sources
                if v.size and v.dtype.kind == "f" and not bus_group and np.isnan(v).all(axis=1).any():
                    problems.append(f"{path.name} rates/{name}: {int(np.isnan(v).all(axis=1).sum())} empty rows")
                if len(t):
                    for p in g["param"].asstr()[:]:
                        spans.setdefault((str(path.parent), str(fh.attrs.get("session", "")), p), []).append(
                            (int(t[0]), int(t[-1]), path.name))
    for (_, _, p), segs in spans.items():
        segs.sort()
        for (_, a1, fa), (b0, _, fb) in zip(segs, segs[1:]):
            if b0 <= a1:
                problems.append(f"{p}: {fb} starts at {b0}, before {fa} ends at {a1}")
    return problems


@pytest.fixture(autouse=True)
def _recordings_keep_time_order(request):
    """Every recording a test writes under its ``tmp_path``: times strictly increase in every dataset,
    no empty rows, segments do not overlap (issue 18). Tests that damage files on purpose still pass:
    files HDF5 cannot open are skipped."""
    if "tmp_path" not in request.fixturenames or request.node.get_closest_marker("unordered_times"):
        yield
        return
    folder = request.getfixturevalue("tmp_path")  # (taken before: torn down after this check)
    yield
    problems = recording_time_problems(folder)
    assert not problems, "recording times out of order:\n" + "\n".join(problems[:20])
