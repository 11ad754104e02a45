"""HDF5 recording and the analyst reader.

Writing (the ground station): ``RecorderService`` buffers ingest results and
events on the event loop and appends them to live-readable (SWMR) HDF5 segment
files from a worker thread; ``layout`` says what is where, ``buffer`` and
``blocks`` decide (sans-I/O), ``writer`` moves the arrays into files
(``segfile`` creates them, ``sessionindex`` lists them and resumes a session
after a crash). ``compress`` compresses closed segments in a child process
(verified, swapped in atomically). ``window`` reads a live session's recent
samples back, for console backfill.

Reading (analysts): ``recorder.open(path)`` returns a ``Recording`` of a segment
file, a session index or a folder. See docs/recording.md.
"""

from .layout import FORMAT, FORMAT_VERSION, TIME_UNITS, SegmentLayout
from .reader import ParameterInfo, RecordedPacket, Recording, Samples, open_recording

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "TIME_UNITS",
    "SegmentLayout",
    "Recording",
    "Samples",
    "RecordedPacket",
    "ParameterInfo",
    "open",
    "RecorderService",
    "HDF5Writer",
]

open = open_recording  # noqa: A001  (recorder.open(path), like h5py.File / xarray.open_dataset)


def __getattr__(name: str):
    # The writer side imports lazily so that `import recorder` stays light for analysts.
    if name == "RecorderService":
        from .service import RecorderService

        return RecorderService
    if name == "HDF5Writer":
        from .writer import HDF5Writer

        return HDF5Writer
    raise AttributeError(name)
