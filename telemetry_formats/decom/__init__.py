"""Batch decommutation: PCM packets to minor/major frames and calibrated parameter samples."""

from .decommutator import DecomError, Decommutator, DecomResult, DecomStats
from .frames import FrameSynchronizer, MinorFrames
from .major import MajorFrameAssembler, MajorFrames
from .params import ExtractionPlan, SampleBatch

__all__ = [
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
]
