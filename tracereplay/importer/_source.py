"""Opening an input: plain text, .gz, .xz, .zst (by content, not by name) or perf.data.

Blocks of whole lines are read in turn, so memory stays bounded whatever the file size, and
the raw bytes (compressed, for a compressed input) are hashed as they stream past, on a thread
of their own (hashlib releases the GIL), while the text is decompressed and scanned.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import lzma
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from tracereplay.errors import ImportFormatError

BLOCK_BYTES = 16 << 20
READ_BYTES = 1 << 20  # the most one read asks of a decompressing stream or a pipe

_MAGIC = {
    b"\x1f\x8b": "gzip",
    b"\xfd7zXZ\x00": "xz",
    b"\x28\xb5\x2f\xfd": "zstd",
    b"PERFILE2": "perf.data",
}


class _HashingReader:
    """A raw file that hashes what is read through it (in order, on a thread of its own)."""

    def __init__(self, f: IO[bytes]) -> None:
        self._f = f
        self._sha256 = hashlib.sha256()
        self._hasher = ThreadPoolExecutor(max_workers=1)
        self._hashed: Future[None] | None = None

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n)
        if data:
            self._hashed = self._hasher.submit(self._sha256.update, data)
        return data

    def hexdigest(self) -> str:
        if self._hashed is not None:
            self._hashed.result()
        return self._sha256.hexdigest()

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True

    # Not seekable: the hash needs every byte once, in order. GzipFile's file object has a
    # seek (it calls it only to rewind, which a forward read never does).
    def seekable(self) -> bool:
        return False

    def seek(self, offset: int, whence: int = 0, /) -> int:
        raise io.UnsupportedOperation("seek")

    def drain(self) -> None:
        while self.read(1 << 20):
            pass

    def close(self) -> None:
        self._hasher.shutdown(wait=True)
        self._f.close()


def _open(path: Path) -> IO[bytes]:
    try:
        return path.open("rb")
    except OSError as e:
        raise ImportFormatError(f"{path}: cannot read it: {e.strerror or e}") from None


def sniff(path: Path) -> str:
    """``plain``, ``gzip``, ``xz``, ``zstd`` or ``perf.data``, from the first bytes."""
    with _open(path) as f:
        head = f.read(8)
    for magic, kind in _MAGIC.items():
        if head.startswith(magic):
            return kind
    return "plain"


class Source:
    """An opened input: ``blocks()`` yields bytes that end at a line boundary."""

    def __init__(self, path: Path, compression: str, stream: Any, raw: _HashingReader) -> None:
        self.path = path
        self.compression = compression
        self._stream = stream
        self._raw = raw
        self.bytes_read = 0  # bytes the stream has handed out (decompressed), counted as they come
        self.exhausted = False  # the stream has ended (not merely a reader stopped early)

    def _read(self, n: int) -> bytes:
        """Up to ``n`` bytes, fewer only at the end of the stream.

        The stream is read in the pieces it hands out (``read1`` where it has one): ``read(n)``
        of a gzip or xz file throws away what it had decompressed when the input breaks off, so
        an error could not say how far the input was good.
        """
        read = getattr(self._stream, "read1", self._stream.read)
        # a plain file is read in one piece (the fewest copies); other streams in small ones
        most = n if self.compression == "plain" else READ_BYTES
        pieces = []
        got = 0
        while got < n:
            try:
                piece = read(min(n - got, most))
            except (EOFError, OSError, lzma.LZMAError, ValueError) as e:
                raise ImportFormatError(
                    f"{self.path}: {self.compression} input is truncated or corrupt after "
                    f"{self.bytes_read} decompressed bytes ({e})"
                ) from None
            if not piece:
                self.exhausted = True
                break
            pieces.append(piece)
            got += len(piece)
            self.bytes_read += len(piece)
        return b"".join(pieces)

    def blocks(self, block_bytes: int = BLOCK_BYTES) -> Iterator[bytes]:
        rest = b""  # the start of a line whose end is still to come (it holds no newline)
        while True:
            data = self._read(block_bytes)
            if not data:
                break
            cut = data.rfind(b"\n")
            if cut < 0:
                rest += data
                continue
            block = b"".join((rest, memoryview(data)[: cut + 1]))  # one copy
            rest = data[cut + 1 :]
            yield block
        if rest:
            yield rest

    @property
    def sha256(self) -> str:
        try:
            self._raw.drain()
        except OSError as e:
            raise ImportFormatError(f"{self.path}: cannot read it: {e.strerror or e}") from None
        return self._raw.hexdigest()


def _perf_script(path: Path) -> Iterator[Source]:
    perf = shutil.which("perf")
    if perf is None:
        raise ImportFormatError(
            f"{path}: a perf.data file needs 'perf' on PATH to be read (it runs 'perf script'); "
            "install linux-tools or run 'perf script -F comm,pid,tid,cpu,time,event,trace' "
            "yourself and import its output"
        )
    raw = _HashingReader(_open(path))
    # stderr goes to a file: a pipe nobody reads while stdout streams could fill up and stall perf
    errors = tempfile.TemporaryFile()  # noqa: SIM115  closed below
    try:
        proc = subprocess.Popen(
            [perf, "script", "-i", str(path), "-F", "comm,pid,tid,cpu,time,event,trace"],
            stdout=subprocess.PIPE,
            stderr=errors,
            stdin=subprocess.DEVNULL,
        )
    except OSError as e:
        raw.close()
        errors.close()
        raise ImportFormatError(f"{path}: cannot run {perf}: {e.strerror or e}") from None
    assert proc.stdout is not None
    src = Source(path, "perf.data", proc.stdout, raw)
    failure = None
    try:
        try:
            yield src
        finally:
            proc.stdout.close()
            failure = _perf_failure(path, proc.wait(), errors)
    except Exception:
        # A file perf cannot read reaches the reader empty or cut short, and the reader fails on
        # that ("no event line"); perf's own error says why. A reader that stopped before the
        # end keeps its own error: closing the pipe is what ended perf then.
        if failure is not None and src.exhausted:
            raise failure from None
        raise
    finally:
        errors.close()
        raw.close()
    if failure is not None:
        raise failure


def _perf_failure(path: Path, rc: int, stderr: IO[bytes]) -> ImportFormatError | None:
    """The error of a ``perf script`` that exited with ``rc``: its last line on stderr."""
    if rc == 0:
        return None
    stderr.seek(0)
    lines = stderr.read().decode(errors="replace").strip().splitlines()
    tail = lines[-1] if lines else f"exit code {rc}"
    return ImportFormatError(f"{path}: 'perf script' could not read it: {tail}")


@contextmanager
def open_source(path: Path) -> Iterator[Source]:
    """Open ``path`` for streaming, decompressing by content."""
    if not path.is_file():
        raise ImportFormatError(f"{path}: no such file")
    kind = sniff(path)
    if kind == "perf.data":
        yield from _perf_script(path)
        return
    raw = _HashingReader(_open(path))
    stream: Any
    try:
        if kind == "gzip":
            stream = gzip.GzipFile(fileobj=raw, mode="rb")
        elif kind == "xz":
            # LZMAFile takes any object with read(); its stub asks for a whole IO[bytes]
            stream = lzma.LZMAFile(raw, mode="rb")  # type: ignore[arg-type]  # noqa: SIM115
        elif kind == "zstd":
            stream = _ZstdStream(raw)
        else:
            stream = raw
        yield Source(path, kind, stream, raw)
    finally:
        raw.close()


class _ZstdStream:
    """zstd frames decompressed incrementally; input that ends inside a frame is an error."""

    def __init__(self, raw: _HashingReader) -> None:
        import zstandard

        self._raw = raw
        self._zstd = zstandard
        self._d = zstandard.ZstdDecompressor().decompressobj()
        self._in_frame = False

    def read(self, n: int) -> bytes:
        while True:
            chunk = self._raw.read(n)
            if not chunk:
                if self._in_frame:
                    raise EOFError("the input ends inside a zstd frame")
                return b""
            self._in_frame = True
            try:
                out = self._d.decompress(chunk)
                while self._d.eof:
                    # Concatenated frames (zstd -c a b, pzstd): continue with the rest.
                    rest = self._d.unused_data
                    self._d = self._zstd.ZstdDecompressor().decompressobj()
                    self._in_frame = bool(rest)
                    if not rest:
                        break
                    out += self._d.decompress(rest)
            except self._zstd.ZstdError as e:
                raise EOFError(str(e)) from None
            if out:
                return out
