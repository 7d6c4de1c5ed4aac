"""A decoded request packed for the trip from a decoder process: Arrow IPC streams behind a
small header (private to :mod:`vlmscope.collectors.otlp`, which re-exports its public
names)."""

from __future__ import annotations

import pickle
import struct
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from vlmscope.collectors._otlp_types import DecodedSpans
from vlmscope.collectors.convert import SpanBatch


@dataclass
class PackedSpans:
    """A :class:`DecodedSpans` for the trip from a decoder process to the server: each table
    as one Arrow IPC stream, written and read by Arrow's C++ code (faster than pickling the
    tables, ``benchmarks/README.md``), the ids and counts pickled in a header before them
    (:meth:`wire`, :meth:`from_wire`)."""

    names: list[str]
    streams: list[Any]  # pa.Buffer, or any bytes-like object
    keys: list[tuple[str, str]]
    rejected: int = 0
    message: str = ""
    evaluations: int = 0

    @classmethod
    def pack(cls, decoded: DecodedSpans) -> PackedSpans:
        """``decoded``, packed."""
        tables = {"": decoded.batch.spans, **decoded.batch.derived}
        streams = []
        for table in tables.values():
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, table.schema) as writer:
                writer.write_table(table)
            streams.append(sink.getvalue())
        return cls(list(tables), streams, decoded.keys, decoded.rejected, decoded.message,
                   decoded.evaluations)

    def wire(self) -> list[Any]:
        """The pieces to send, in order: the header (its length, then the pickled names,
        stream sizes, keys and counts), then every stream."""
        header = pickle.dumps((self.names, [memoryview(s).nbytes for s in self.streams],
                               self.keys, self.rejected, self.message, self.evaluations),
                              protocol=pickle.HIGHEST_PROTOCOL)
        return [_HEADER.pack(len(header)) + header, *self.streams]

    @classmethod
    def from_wire(cls, data: bytes | memoryview) -> PackedSpans:
        """What :meth:`wire` sent, received as one buffer (the streams are read in place:
        the tables keep ``data`` alive)."""
        view = memoryview(data)
        (size,) = _HEADER.unpack_from(view)
        at = _HEADER.size + size
        names, sizes, keys, rejected, message, evaluations = pickle.loads(
            view[_HEADER.size:at])
        streams = []
        for length in sizes:
            streams.append(view[at:at + length])
            at += length
        return cls(names, streams, keys, rejected, message, evaluations)

    def unpack(self) -> DecodedSpans:
        """The decoded request again (its tables read in place from the streams)."""
        tables = [pa.ipc.open_stream(pa.py_buffer(stream)).read_all()
                  for stream in self.streams]
        spans, *derived = tables
        batch = SpanBatch(spans, dict(zip(self.names[1:], derived, strict=True)))
        return DecodedSpans(batch, self.keys, self.rejected, self.message, self.evaluations)


_HEADER = struct.Struct("<Q")
