"""Reading one member of a zip archive with a hard cap on the bytes it decompresses to.

Owns: :func:`read_member` and :class:`TooLarge`. A zip entry's declared size
is the student's word, not a fact: an entry that declares 1 KB can inflate to
gigabytes, and zipfile itself hands bzip2 and LZMA data to the decompressor
unbounded (a few KB of bzip2 can become hundreds of MB in one call). Here the
member's compressed bytes are read raw and decompressed piece by piece, at most
``CHUNK`` bytes of output at a time, and reading stops as soon as the output
passes the cap; the CRC is checked on what was read.
"""
from __future__ import annotations

import bz2
import copy
import zipfile
import zlib

from labkit.errors import SubmissionError

CHUNK = 1 << 16


class TooLarge(SubmissionError):
    """The member decompresses to more than the cap allowed."""


def _raw_chunks(zf: zipfile.ZipFile, info: zipfile.ZipInfo):
    """The member's compressed bytes, as stored (encrypted members raise RuntimeError)."""
    raw = copy.copy(info)
    raw.compress_type, raw.file_size = zipfile.ZIP_STORED, info.compress_size
    del raw.CRC  # the CRC is of the decompressed bytes: checked in read_member
    with zf.open(raw) as f:
        while chunk := f.read(CHUNK):
            yield chunk


def _inflate(chunks, decompressor):
    """Decompressed pieces of at most CHUNK bytes each (zlib or bz2 ``decompressor``)."""
    bzip = isinstance(decompressor, bz2.BZ2Decompressor)
    for data in chunks:
        while True:
            out = decompressor.decompress(data, CHUNK)
            if out:
                yield out
            if decompressor.eof:
                return
            if bzip:  # bz2 keeps unread input inside; it wants more once needs_input
                if decompressor.needs_input:
                    break
                data = b""
            else:     # zlib hands back what it did not read
                data = decompressor.unconsumed_tail
                if not data:
                    break
    if not bzip and (rest := decompressor.flush()):
        yield rest


def iter_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int):
    """The decompressed bytes of ``info`` in pieces; :class:`TooLarge` once they pass ``cap``
    bytes, ``zipfile.BadZipFile`` on a CRC mismatch, NotImplementedError for methods other
    than stored, deflate and bzip2."""
    if info.compress_type == zipfile.ZIP_STORED:
        pieces = _raw_chunks(zf, info)
    elif info.compress_type == zipfile.ZIP_DEFLATED:
        pieces = _inflate(_raw_chunks(zf, info), zlib.decompressobj(-15))
    elif info.compress_type == zipfile.ZIP_BZIP2:
        pieces = _inflate(_raw_chunks(zf, info), bz2.BZ2Decompressor())
    else:
        raise NotImplementedError(f"compression method {info.compress_type} (use stored or deflate)")
    total, crc = 0, 0
    for piece in pieces:
        total += len(piece)
        if total > cap:
            raise TooLarge(f"decompresses to more than {cap} bytes (it declares {info.file_size})")
        crc = zlib.crc32(piece, crc)
        yield piece
    if crc != info.CRC:
        raise zipfile.BadZipFile(f"bad CRC-32 for {info.filename}")


def read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int) -> bytes:
    """All of ``info``'s decompressed bytes, at most ``cap`` of them (:class:`TooLarge` beyond)."""
    return b"".join(iter_member(zf, info, cap))
