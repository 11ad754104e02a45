"""One HDF5 segment file on the writer's side: created with its fixed layout, abandoned on failure.

``create_segment_file`` makes every group, dataset, attribute and dimension scale of
a ``SegmentLayout`` and then switches SWMR on (nothing may be created after that,
see docs/recording.md). Files are opened without a chunk cache: appends go
straight to the file (a partial last chunk is read back from the page cache on the
next append) instead of waiting in HDF5's cache for ``flush()``; measured, this
halves the time of a write + flush. ``abandon`` closes a file whose writes fail
without writing to it again.
"""

from __future__ import annotations

import os
import re

import h5py
import numpy as np

from .layout import STR, SegmentLayout

__all__ = ["create_segment_file", "abandon", "describe"]


def _attr(value):
    """Attribute values h5py stores portably (lists of str as variable-length strings)."""
    if isinstance(value, (list, tuple)) and (not value or isinstance(value[0], str)):
        return np.array(list(value), dtype=h5py.string_dtype())
    return value


def create_segment_file(path: str, layout: SegmentLayout, root_attrs: dict) -> tuple[h5py.File, dict[str, int]]:
    """A new segment file (``w-``: never overwrites) in SWMR mode; returns it and its growing datasets' rows."""
    f = h5py.File(path, "w-", libver=("v110", "v110"), rdcc_nbytes=0)
    try:
        for k, v in root_attrs.items():
            f.attrs[k] = _attr(v)
        for gpath, attrs in layout.group_attrs().items():
            g = f.require_group(gpath)
            for k, v in attrs.items():
                g.attrs[k] = _attr(v)
        rows = {}
        specs = layout.datasets()
        for spec in specs:
            if spec.grows:
                tail = tuple(spec.tail)
                ds = f.create_dataset(spec.path, shape=(0, *tail), maxshape=(None, *tail), dtype=spec.dtype,
                                      chunks=(spec.chunk_rows, *tail))
                rows[spec.path] = 0
            elif spec.dtype == STR:
                ds = f.create_dataset(spec.path, data=np.array(spec.data, dtype=object), dtype=h5py.string_dtype())
            else:
                ds = f.create_dataset(spec.path, data=spec.data)
            for k, v in spec.attrs.items():
                ds.attrs[k] = _attr(v)
            if spec.scale:
                ds.make_scale(spec.scale)
        for spec in specs:
            for axis, scale in enumerate(spec.dims):
                if scale is not None:
                    f[spec.path].dims[axis].attach_scale(f[scale])
        f.swmr_mode = True  # nothing is created after this
    except BaseException:
        f.close()
        raise
    return f, rows


def abandon(f: h5py.File) -> None:
    """Close a file whose writes fail (full disk, I/O error) without writing to it again.

    HDF5 keeps a file it cannot flush open, and retries (and may crash) when the
    library shuts down. Its descriptor is pointed at /dev/null first: the close then
    succeeds, and the file on disk keeps what the last successful flush left there.
    """
    try:
        fd = f.id.get_vfd_handle()
        null = os.open(os.devnull, os.O_RDWR)
        try:
            os.dup2(null, fd)
        finally:
            os.close(null)
    except Exception:
        pass
    try:
        f.close()
    except Exception:
        pass


def describe(exc: BaseException) -> str:
    """A short message for an exception (HDF5's call dumps reduced to their gist, errno text added)."""
    text = str(exc) or type(exc).__name__
    m = re.search(r"error message = '([^']*)'", text)
    if m:
        text = text.split("(", 1)[0].strip() + f" ({m.group(1)})"
    errno = getattr(exc, "errno", None)
    if errno is not None and os.strerror(errno) not in text:
        text += f" ({os.strerror(errno)})"
    return text
