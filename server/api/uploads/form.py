"""The upload form, read as it streams: fields first, checked before a byte of the file is kept.

The SDK (like OSS's PostObject, which requires it) sends every field before the `file` part. So
the form's credentials (policy, signature, key) are verified the moment the file part's headers
arrive, and a forged or expired form is refused without reading, let alone spooling, the file;
an accepted file is written to a temporary file and cut off as soon as it passes the size the
policy allows. Nothing else in the body is buffered beyond a few small fields.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from server.errors import InvalidParameter

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks  # defined for type checkers only

FILE_FIELD = "file"
MAX_FIELDS = 32
MAX_FIELD_BYTES = 16 * 1024
# File data is handed to a thread in slices of about this size (disk writes stay off the loop).
FLUSH_BYTES = 1024 * 1024

# Called with the fields read so far when the file part starts; returns the file's byte limit,
# or raises (a DashScopeError) to refuse the upload.
Admit = Callable[[dict[str, str]], int]


@dataclass
class UploadForm:
    """A fully read upload form: its text fields and the file's bytes in a temporary file."""

    fields: dict[str, str]
    path: Path
    size: int


@dataclass
class _Part:
    name: str = ""
    is_file: bool = False
    data: bytearray = field(default_factory=bytearray)


class _FormReader:
    """python-multipart callbacks: fields into a dict, the file part into `sink` after `admit`."""

    def __init__(self, admit: Admit, sink: IO[bytes]) -> None:
        self.admit = admit
        self.sink = sink
        self.fields: dict[str, str] = {}
        self.file_seen = False
        self.size = 0
        self.limit = 0
        self.pending: list[bytes] = []  # file bytes not yet written
        self._part = _Part()
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._begin,
            "on_part_data": self._data,
            "on_part_end": self._end,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value_part,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
        }

    def _begin(self) -> None:
        self._part, self._disposition = _Part(), b""

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _header_value_part(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name, self._header_value = b"", b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        name = options.get(b"name")
        if name is None:
            raise InvalidParameter("Every part of the upload form needs a name.")
        self._part.name = name.decode("utf-8", "replace")
        if self._part.name != FILE_FIELD:
            if len(self.fields) >= MAX_FIELDS:
                raise InvalidParameter(f"The upload form has more than {MAX_FIELDS} fields.")
            return
        if self.file_seen:
            raise InvalidParameter("The upload form is not a valid multipart form: more than one file part.")
        self.file_seen = self._part.is_file = True
        self.limit = self.admit(dict(self.fields))  # refuses a bad form before any file byte

    def _data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if self._part.is_file:
            self.size += len(chunk)
            if self.size > self.limit:
                raise InvalidParameter(
                    f"The file is too large: more than {self.limit} bytes "
                    f"({self.limit // (1024 * 1024)} MB) allowed."
                )
            self.pending.append(chunk)
            return
        if len(self._part.data) + len(chunk) > MAX_FIELD_BYTES:
            raise InvalidParameter(f"The upload form field {self._part.name!r} is too long.")
        self._part.data.extend(chunk)

    def _end(self) -> None:
        if not self._part.is_file:
            self.fields.setdefault(self._part.name, self._part.data.decode("utf-8", "replace"))


@contextlib.asynccontextmanager
async def read_upload_form(
    stream: AsyncIterator[bytes], content_type: str, *, admit: Admit, spool_dir: Path | None = None
) -> AsyncIterator[UploadForm]:
    """Parse a multipart upload from `stream`; the temporary file is removed when the block ends."""
    kind, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise InvalidParameter("The upload must be a multipart/form-data form with a part named 'file'.")
    fd, name = tempfile.mkstemp(prefix="paddock-upload-", dir=spool_dir)
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as sink:
            reader = _FormReader(admit, sink)
            await _feed(stream, MultipartParser(boundary, reader.callbacks()), reader)
        if not reader.file_seen:
            raise InvalidParameter("The upload form has no file part named 'file'.")
        yield UploadForm(reader.fields, path, reader.size)
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


async def _feed(stream: AsyncIterator[bytes], parser: MultipartParser, reader: _FormReader) -> None:
    try:
        async for chunk in stream:
            parser.write(chunk)
            if sum(len(c) for c in reader.pending) >= FLUSH_BYTES:
                await _flush(reader)
        parser.finalize()
    except FormParserError as exc:
        raise InvalidParameter("The upload is not a valid multipart form.") from exc
    await _flush(reader)


async def _flush(reader: _FormReader) -> None:
    data, reader.pending = b"".join(reader.pending), []
    if data:
        await asyncio.to_thread(reader.sink.write, data)
