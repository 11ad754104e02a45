"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "shared/data/ch10"


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    """Directory of the real Chapter 10 recordings (skips the test if it is missing)."""
    if not SAMPLE_DIR.is_dir():
        pytest.skip(f"sample data not found: {SAMPLE_DIR}")
    return SAMPLE_DIR
