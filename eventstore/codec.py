"""Stored state bytes: one codec byte, then the payload.

====  ===================================================================================
byte  payload
====  ===================================================================================
0     the state's JSON, uncompressed (small states, where zstd would not pay)
1     zstd-compressed JSON
2     zstd-compressed JSON using the keyframe's JSON as a raw-content dictionary: a delta
3     nothing: the state equals its keyframe's
64    a pointer to the stored bytes in a blob store (:mod:`eventstore.blobs.offload`, which
      puts the bytes back before anything decodes them)
69    the stored bytes sealed with the subject's data key (:mod:`eventstore.encryption`, which
      opens them before anything decodes them)
83    never stored: what a reader sees in place of bytes whose subject's key was shredded
      (then the subject's name)
====  ===================================================================================

New codecs get new bytes; items written with old ones stay readable. Decompression is bounded by
``max_size``: a corrupt or hostile item cannot make the reader allocate more than that.
"""

from __future__ import annotations

import io
import threading
from typing import Generic, TypeVar

import zstandard

RAW = 0
ZSTD = 1
ZSTD_DELTA = 2
SAME_AS_BASE = 3
#: Not codecs: the first byte of a pointer to offloaded bytes, of sealed bytes, and of what
#: stands in for bytes whose key was shredded.
OFFLOADED = 0x40
ENCRYPTED = 0x45
SHREDDED = 0x53

#: States whose JSON is shorter than this are stored raw (zstd's frame overhead would not pay).
DEFAULT_THRESHOLD = 256
#: Largest decoded state accepted (bytes of JSON).
DEFAULT_MAX_SIZE = 64 * 1024 * 1024
# A full state is compressed once per keyframe group and read by every read of the group, so it
# gets a higher level than deltas: on 32-128 KB documents level 6 stores 3-5 % fewer bytes (under
# gzip's size, which decides read units against libraries that store every version whole) for
# about 3x the CPU of level 3, while deltas gain nothing from it.
_FULL_LEVEL = 6
_DELTA_LEVEL = 3
_CHUNK = 256 * 1024
# Keyframes longer than this get delta parameters of their own (_large_delta_parameters).
_LARGE_BASE = 512 * 1024
_local = threading.local()


def _compressor() -> zstandard.ZstdCompressor:
    # zstd contexts are costly to build and not thread-safe: one per thread.
    compressor: zstandard.ZstdCompressor | None = getattr(_local, "compressor", None)
    if compressor is None:
        compressor = _local.compressor = zstandard.ZstdCompressor(level=_FULL_LEVEL)
    return compressor


class CodecError(ValueError):
    """Stored bytes cannot be decoded; the store turns this into ``CorruptRecord``."""


class Sealed(CodecError):
    """The stored bytes are sealed with a data key, and nothing opened them: the store was
    opened without a key provider."""


class ShreddedState(CodecError):
    """The subject's key was shredded: the bytes can never be opened."""

    def __init__(self, subject: str) -> None:
        self.subject = subject
        super().__init__(f"the key of subject {subject!r} was shredded")


class Offloaded(CodecError):
    """The stored bytes are a pointer to a blob store, and nothing put the bytes back: the
    store was opened without its blob store."""


def encode(data: bytes, *, threshold: int = DEFAULT_THRESHOLD) -> bytes:
    """Encode a full state; zstd when it is at least ``threshold`` bytes and compression helps."""
    if len(data) >= threshold:
        packed = _compressor().compress(data)
        if len(packed) < len(data):
            return bytes([ZSTD]) + packed
    return bytes([RAW]) + data


class _Dictionaries:
    """zstd contexts built on recent keyframes, per thread. Building one costs several times
    what a delta itself does (measured on a 2.6 KB keyframe: 22 µs to build and compress against
    4 µs warm; 15 µs to build and decompress against 0.7 µs), and an application's appends and
    reads go to many streams, each with its own keyframes. So each kind gets a memory budget
    rather than a count: a compression context takes about 140 KB plus 23 times its keyframe
    (measured RSS: 143 KB on a 2.6 KB keyframe, 850 KB on a 31 KB one), a decompression context
    about 28 KB plus twice its keyframe. With the default budgets of 8 MB each, a thread keeps
    about 40 compression and 240 decompression contexts of 2 KB documents (8 and 130 of 32 KB
    ones), at most 16 MB; the least recently used go first."""

    compress_budget = 8 * 1024 * 1024
    decompress_budget = 8 * 1024 * 1024

    def __init__(self) -> None:
        self._compressors = _Budgeted[zstandard.ZstdCompressor](self.compress_budget)
        self._decompressors = _Budgeted[zstandard.ZstdDecompressor](self.decompress_budget)

    def compressor(self, base: bytes) -> zstandard.ZstdCompressor:
        found = self._compressors.take(base)
        if found is None:
            if len(base) <= _LARGE_BASE:
                found = zstandard.ZstdCompressor(level=_DELTA_LEVEL, dict_data=_dictionary(base))
            else:
                found = zstandard.ZstdCompressor(
                    compression_params=_large_delta_parameters(len(base)),
                    dict_data=_dictionary(base),
                )
        return self._compressors.keep(base, found, 140 * 1024 + 23 * len(base))

    def decompressor(self, base: bytes) -> zstandard.ZstdDecompressor:
        found = self._decompressors.take(base)
        if found is None:
            found = zstandard.ZstdDecompressor(dict_data=_dictionary(base))
        return self._decompressors.keep(base, found, 28 * 1024 + 2 * len(base))


def _large_delta_parameters(base_size: int) -> zstandard.ZstdCompressionParameters:
    # With its default parameters, zstd finds matches only in the last megabyte or so of a raw
    # dictionary: measured, a 4-character edit of a 5.4 MB document made a 2.4 MB delta, no
    # smaller than compressing the document alone. A window covering keyframe and state, and
    # hash and chain tables of about one slot per 8 bytes of keyframe, bring it to 542 bytes
    # (40 ms to build and compress, 14 MB of context). Level 1's strategy: level 3 found
    # nothing more and took 1.6x the time. Above about 16 MB of keyframe zstd stops loading the
    # whole dictionary (a 20 MB document: a 1.5 MB delta, still stored correctly).
    window = min(27, max(20, (2 * base_size + 1024).bit_length()))
    tables = min(22, max(17, base_size.bit_length() - 3))
    return zstandard.ZstdCompressionParameters.from_level(
        1, window_log=window, hash_log=tables, chain_log=tables
    )


def _dictionary(base: bytes) -> zstandard.ZstdCompressionDict:
    return zstandard.ZstdCompressionDict(base, dict_type=zstandard.DICT_TYPE_RAWCONTENT)


_T = TypeVar("_T")


class _Budgeted(Generic[_T]):
    """Values by keyframe, most recently used last, within ``budget`` bytes of estimated cost."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.used = 0
        self._values: dict[bytes, tuple[_T, int]] = {}

    def take(self, base: bytes) -> _T | None:
        found = self._values.pop(base, None)
        if found is None:
            return None
        self.used -= found[1]
        return found[0]

    def keep(self, base: bytes, value: _T, cost: int) -> _T:
        if cost > self.budget:
            return value  # a context for a keyframe of megabytes is rebuilt each time instead
        while self._values and self.used + cost > self.budget:
            _, dropped = self._values.pop(next(iter(self._values)))
            self.used -= dropped
        self._values[base] = (value, cost)
        self.used += cost
        return value


def _dictionaries() -> _Dictionaries:
    found: _Dictionaries | None = getattr(_local, "dictionaries", None)
    if found is None:
        found = _local.dictionaries = _Dictionaries()
    return found


def _decompressor() -> zstandard.ZstdDecompressor:
    found: zstandard.ZstdDecompressor | None = getattr(_local, "decompressor", None)
    if found is None:
        found = _local.decompressor = zstandard.ZstdDecompressor()
    return found


def encode_delta(data: bytes, base: bytes) -> bytes:
    """Encode a state against its keyframe's JSON ``base``."""
    if data == base:
        return bytes([SAME_AS_BASE])
    packed = _dictionaries().compressor(base).compress(data)
    return bytes([ZSTD_DELTA]) + packed


def needs_base(blob: bytes) -> bool:
    """Whether decoding ``blob`` needs the keyframe's JSON."""
    return bool(blob) and blob[0] in (ZSTD_DELTA, SAME_AS_BASE)


def decode(blob: bytes, base: bytes | None = None, *, max_size: int = DEFAULT_MAX_SIZE) -> bytes:
    """Decode stored bytes back to JSON; :class:`CodecError` if they are malformed, need a base
    that was not given, or would expand past ``max_size``."""
    if not blob:
        raise CodecError("empty state")
    codec, payload = blob[0], blob[1:]
    if codec == RAW:
        if len(payload) > max_size:
            raise CodecError(f"state of {len(payload)} bytes exceeds {max_size}")
        return payload
    if codec == ZSTD:
        return _bounded(_decompressor(), payload, max_size)
    if codec in (ZSTD_DELTA, SAME_AS_BASE):
        if base is None:
            raise CodecError("delta without its keyframe")
        if codec == SAME_AS_BASE:
            return base
        return _bounded(_dictionaries().decompressor(base), payload, max_size)
    # The layers' formats, checked only as far as telling them from damage: a pointer is a
    # format byte, a SHA-256, a size and a key; sealed bytes a format byte, a key check, a
    # nonce and a GCM tag.
    if codec == OFFLOADED:
        if len(payload) <= 1 + 32 + 8 or payload[0] != 1:
            raise CodecError("damaged pointer to a blob store")
        raise Offloaded("the state is in a blob store")
    if codec == ENCRYPTED:
        if len(payload) < 1 + 8 + 12 + 16 or payload[0] != 1:
            raise CodecError("damaged sealed state")
        raise Sealed("the state is encrypted")
    if codec == SHREDDED:
        raise ShreddedState(payload.decode("utf-8", "replace"))
    raise CodecError(f"unknown codec byte {codec}")


def _bounded(decompressor: zstandard.ZstdDecompressor, payload: bytes, max_size: int) -> bytes:
    try:
        declared = zstandard.frame_content_size(payload)
    except zstandard.ZstdError as e:
        raise CodecError(f"broken zstd data: {e}") from e
    if 0 < declared <= min(max_size, _CHUNK):
        # The frame says how big it is, and that is small: decompress in one go, and refuse
        # data that disagrees with its header or goes on after the frame.
        try:
            one = decompressor.decompressobj()
            data = one.decompress(payload)
        except zstandard.ZstdError as e:
            raise CodecError(f"broken zstd data: {e}") from e
        if len(data) != declared or not one.eof or one.unused_data:
            raise CodecError("zstd frame does not hold what its header says")
        return data
    # Otherwise a streaming read in modest chunks never allocates much more than the data really
    # expands to, whatever the frame header claims, and stops as soon as max_size is passed.
    chunks: list[bytes] = []
    total = 0
    chunk = min(max_size + 1, _CHUNK)
    try:
        with decompressor.stream_reader(io.BytesIO(payload), read_across_frames=True) as reader:
            while True:
                part = reader.read(chunk)
                if not part:
                    break
                total += len(part)
                if total > max_size:
                    raise CodecError(f"state expands past {max_size} bytes")
                chunks.append(part)
    except zstandard.ZstdError as e:
        raise CodecError(f"broken zstd data: {e}") from e
    if not total:
        # States are never empty JSON, so an empty result means the payload is broken.
        raise CodecError("compressed state decodes to nothing")
    return b"".join(chunks)
