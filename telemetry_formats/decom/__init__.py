"""Batch decommutation: PCM packets to minor/major frames, bus messages and words, calibrated parameter samples."""

from .bus import BusExtractor, BusStats, extract_429, extract_1553
from .decommutator import DecomError, Decommutator, DecomResult, DecomStats
from .frames import FrameSynchronizer, MinorFrames
from .major import MajorFrameAssembler, MajorFrames
from .params import ExtractionPlan, SampleBatch

__all__ = [
    "BusExtractor",
    "BusStats",
    "DecomError",
    "DecomResult",
    "DecomStats",
    "Decommutator",
    "ExtractionPlan",
    "FrameSynchronizer",
    "MajorFrameAssembler",
    "MajorFrames",
    "MinorFrames",
    "SampleBatch",
    "extract_1553",
    "extract_429",
]
