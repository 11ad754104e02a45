"""What a file is, from its first bytes: Chapter 10, pcap, pcapng, or something else named.

Pure: bytes in, a ``FileKind`` out. Detection is by content (magic numbers and a
valid Chapter 10 header), never by the file name. ``sniff`` wants the file's
first ``SNIFF_BYTES`` (less for a shorter file).
"""

from __future__ import annotations

from dataclasses import dataclass

from .ch10.header import HEADER_SIZE, HeaderError, parse_header

__all__ = ["SNIFF_BYTES", "FileKind", "sniff", "C10", "PCAP", "PCAPNG"]

SNIFF_BYTES = 1 << 20
C10, PCAP, PCAPNG = "c10", "pcap", "pcapng"

# (magic, kind, what to call it); the first match wins.
_MAGIC: list[tuple[bytes, str, str]] = [
    (b"\xd4\xc3\xb2\xa1", PCAP, "a pcap capture"),
    (b"\xa1\xb2\xc3\xd4", PCAP, "a pcap capture (big-endian)"),
    (b"\x4d\x3c\xb2\xa1", PCAP, "a pcap capture (nanosecond)"),
    (b"\xa1\xb2\x3c\x4d", PCAP, "a pcap capture (nanosecond, big-endian)"),
    (b"\x0a\x0d\x0d\x0a", PCAPNG, "a pcapng capture"),
    (b"\x89HDF\r\n\x1a\n", "hdf5", "an HDF5 file"),
    (b"\x1f\x8b", "gzip", "a gzip-compressed file"),
    (b"PK\x03\x04", "zip", "a zip archive"),
    (b"PK\x05\x06", "zip", "an (empty) zip archive"),
    (b"BZh", "bzip2", "a bzip2-compressed file"),
    (b"\xfd7zXZ\x00", "xz", "an xz-compressed file"),
    (b"\x28\xb5\x2f\xfd", "zstd", "a zstd-compressed file"),
    (b"7z\xbc\xaf\x27\x1c", "7z", "a 7-Zip archive"),
    (b"\x7fELF", "elf", "an ELF executable or library"),
    (b"MZ", "pe", "a Windows executable"),
    (b"%PDF", "pdf", "a PDF document"),
    (b"\x89PNG\r\n\x1a\n", "png", "a PNG image"),
    (b"\xff\xd8\xff", "jpeg", "a JPEG image"),
    (b"SQLite format 3\x00", "sqlite", "an SQLite database"),
    (b"CDF\x01", "netcdf", "a netCDF file"),
    (b"CDF\x02", "netcdf", "a netCDF file"),
    (b"PAR1", "parquet", "a Parquet file"),
]


@dataclass(frozen=True, slots=True)
class FileKind:
    """``kind``: ``c10``, ``pcap``, ``pcapng`` (readable) or another name; ``description`` says it in words.

    ``first_packet``: for ``c10``, the offset of the first valid packet header (0 normally).
    """

    kind: str
    description: str
    first_packet: int = 0

    @property
    def readable(self) -> bool:
        return self.kind in (C10, PCAP, PCAPNG)


def _first_header(head: bytes) -> int:
    pos = 0
    while (pos := head.find(b"\x25\xeb", pos)) >= 0 and pos + HEADER_SIZE <= len(head):
        try:
            parse_header(head, pos)
            return pos
        except HeaderError:
            pos += 1
    return -1


def _is_text(head: bytes) -> bool:
    sample = head[:4096]
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(sample) - 4:  # a cut multi-byte character at the end is fine
            return False
        text = sample[: exc.start].decode("utf-8")
    printable = sum(c.isprintable() or c in "\r\n\t\f" for c in text)
    return printable >= 0.95 * max(len(text), 1)


def sniff(head: bytes) -> FileKind:
    """Name what ``head`` (a file's first bytes) is.

    A file that starts with a valid Chapter 10 packet header is ``c10``; so is one
    with another type's magic nowhere and a valid header later in ``head`` (a
    recording whose first bytes are damaged).
    """
    if not head:
        return FileKind("empty", "an empty file")
    if _first_header(head[:HEADER_SIZE]) == 0:
        return FileKind(C10, "a Chapter 10 file")
    for magic, kind, words in _MAGIC:
        if head.startswith(magic):
            return FileKind(kind, words)
    first = _first_header(head)
    if first > 0:
        return FileKind(C10, f"a Chapter 10 file (first valid packet at offset {first})", first)
    if _is_text(head):
        if b"G\\" in head[:4096] or b"R-1\\" in head[:4096]:
            return FileKind("tmats", "a TMATS text file (a setup record, not a recording)")
        return FileKind("text", "a text file")
    return FileKind("unknown", f"not a Chapter 10 file or a capture (first bytes {head[:8].hex(' ')})")
