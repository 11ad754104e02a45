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
