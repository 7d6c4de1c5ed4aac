"""The collector's decoder processes: OTLP request bodies down a socket pair each, Arrow IPC
streams back (private to :mod:`vlmscope.collectors.receiver`, which re-exports its names)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import multiprocessing
import queue
import socket
import struct
import threading
from dataclasses import dataclass, field

from vlmscope.collectors import otlp

_log = logging.getLogger("vlmscope.receiver")


def decoder_started() -> None:
    """In a decoder process, before its first request: import the decoder, then move every
    object there is to the garbage collector's permanent generation (``gc.freeze``). A
    decoded request is a tree of dicts and lists freed by reference counting, yet building
    one sets off collections that walked every module object the imports left, which
    slowed decoding (figures: ``benchmarks/README.md``)."""
    import gc

    from vlmscope.collectors import otlp  # noqa: F401  (imported before the freeze)

    gc.freeze()
    # A request makes thousands of short-lived containers, freed by reference counting: a
    # young-generation collection every 700 of them finds nothing. Cycles are still
    # collected, every 50,000 allocations.
    gc.set_threshold(50_000, 20, 100)


# A request to a decoder process: the body's length and whether it is JSON, then the body. Its
# answer: the length of what follows and a status, then the request packed
# (otlp.PackedSpans.wire) or the error's message.
_REQUEST = struct.Struct("<QB")


_ANSWER = struct.Struct("<QB")


_DECODED, _REFUSED, _FAILED = 0, 1, 2


# Bytes a decoder's socket buffers each way (the system's cap, net.core.wmem_max, may make
# it less): a 512-span body is 370 KB, its answer 790 KB.
_SOCKET_BUFFER = 4 * 1024 * 1024


def _receive_exactly(sock: socket.socket, size: int) -> bytearray | None:
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    while got < size:
        count = sock.recv_into(view[got:])
        if not count:
            return None
        got += count
    return buffer


def _decoder_main(sock: socket.socket, limits: otlp.OtlpLimits) -> None:
    """A decoder process: answer the requests on ``sock`` one after the other until the
    server closes its end, or dies (even SIGKILLed: the kernel closes its end then). The
    answers go out from a thread of their own, so that the next request is decoded while
    the server's event loop gets round to reading the last answer (a socket holds about
    200 KB; an answer of 512 spans is 790 KB)."""
    decoder_started()
    answers: queue.SimpleQueue = queue.SimpleQueue()

    def send() -> None:
        while (answer := answers.get()) is not None:
            with contextlib.suppress(OSError):  # the server went away: the loop ends too
                for part in answer:
                    sock.sendall(part)

    sender = threading.Thread(target=send, name="vlmscope-decoder-answers", daemon=True)
    sender.start()
    while True:
        head = _receive_exactly(sock, _REQUEST.size)
        size, is_json = _REQUEST.unpack(head) if head is not None else (0, 0)
        body = None if head is None else _receive_exactly(sock, size)
        if body is None:
            answers.put(None)
            sender.join()
            return
        try:
            packed = otlp.decode_body_packed(bytes(body), bool(is_json), limits)
            status, parts = _DECODED, packed.wire()
        except otlp.OtlpDecodeError as error:
            status, parts = _REFUSED, [str(error).encode("utf-8", "backslashreplace")]
        except Exception as error:  # reported to the server, which answers 500
            status, parts = _FAILED, [f"{type(error).__name__}: {error}".encode(
                "utf-8", "backslashreplace")]
        answers.put([_ANSWER.pack(sum(memoryview(part).nbytes for part in parts), status),
                     *parts])


class DecoderDied(RuntimeError):
    """A decoder process ended while it held a request (the client should retry)."""


@dataclass
class _Decoder:
    process: multiprocessing.process.BaseProcess
    sock: socket.socket
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    loop: asyncio.AbstractEventLoop
    waiting: collections.deque = field(default_factory=collections.deque)
    alive: bool = True


class DecoderProcesses:
    """``count`` decoder processes fed from the event loop through a socket pair each: the
    body goes down as it is and the tables come back as Arrow IPC streams
    (:class:`~vlmscope.collectors.otlp.PackedSpans`), with no thread and no pickling of
    either in this process, which costs less CPU than the pool of ``concurrent.futures``
    with its two threads and pickling (figures: ``benchmarks/README.md``). A request goes
    to the process with the
    fewest waiting; a process that dies fails the requests it held (:class:`DecoderDied`)
    and is replaced."""

    def __init__(self, count: int, limits: otlp.OtlpLimits) -> None:
        self._count = count
        self._limits = limits
        self._decoders: list[_Decoder] = []
        self._closed = False
        self._starting: tuple[asyncio.AbstractEventLoop, asyncio.Task] | None = None

    async def start(self) -> None:
        """Start every process and wait until each has imported the decoder; callers that
        come while it starts wait for the same start."""
        loop = asyncio.get_running_loop()
        if self._starting is None or self._starting[0] is not loop:
            self._starting = (loop, loop.create_task(self._start()))
        await asyncio.shield(self._starting[1])

    async def _start(self) -> None:
        loop = asyncio.get_running_loop()
        if self._decoders and self._decoders[0].loop is not loop:
            self.close()  # started by an event loop that is gone
            self._closed = False
        while len(self._decoders) < self._count:
            self._decoders.append(await self._spawn())
        await asyncio.gather(*(self._decode(d, b"", False) for d in self._decoders))

    async def _spawn(self) -> _Decoder:
        mine, theirs = socket.socketpair()
        for end in (mine, theirs):  # room for a whole body, and most of an answer
            for option in (socket.SO_SNDBUF, socket.SO_RCVBUF):
                with contextlib.suppress(OSError):
                    end.setsockopt(socket.SOL_SOCKET, option, _SOCKET_BUFFER)
        # spawn, not fork: this process runs threads (DuckDB, the ingest writer).
        process = multiprocessing.get_context("spawn").Process(
            target=_decoder_main, args=(theirs, self._limits),
            name="vlmscope-decoder", daemon=True)
        process.start()
        theirs.close()
        reader, writer = await asyncio.open_unix_connection(sock=mine, limit=2**20)
        decoder = _Decoder(process, mine, reader, writer, asyncio.get_running_loop())
        decoder.loop.create_task(self._answers(decoder))
        return decoder

    async def _answers(self, decoder: _Decoder) -> None:
        replace = True
        try:
            while True:
                head = await decoder.reader.readexactly(_ANSWER.size)
                size, status = _ANSWER.unpack(head)
                data = await decoder.reader.readexactly(size)
                waiting = decoder.waiting.popleft()
                if not waiting.done():
                    waiting.set_result((status, data))
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        except asyncio.CancelledError:  # the event loop is shutting down
            replace = False
            raise
        finally:
            decoder.alive = False
            while decoder.waiting:
                waiting = decoder.waiting.popleft()
                if not waiting.done():
                    waiting.set_exception(DecoderDied("a decoder process ended; retry"))
            if decoder in self._decoders:
                self._decoders.remove(decoder)
                if replace and not self._closed:
                    _log.warning("a decoder process ended (exit code %s); starting another",
                                 decoder.process.exitcode)
                    with contextlib.suppress(Exception):
                        self._decoders.append(await self._spawn())

    async def decode(self, body: bytes, is_json: bool) -> otlp.DecodedSpans:
        """``body`` decoded by one of the processes; raises
        :class:`~vlmscope.collectors.otlp.OtlpDecodeError` for a body that is not a request,
        :class:`DecoderDied` when the process died with it."""
        if self._closed:
            raise RuntimeError("the decoder processes are closed")
        loop = asyncio.get_running_loop()
        if self._starting is None or self._starting[0] is not loop or \
                not self._starting[1].done():
            await self.start()
        live = [d for d in self._decoders if d.alive] or [await self._spawned()]
        return await self._decode(min(live, key=lambda d: len(d.waiting)), body, is_json)

    async def _spawned(self) -> _Decoder:
        """A fresh process, when every one has died and none has been replaced yet."""
        decoder = await self._spawn()
        self._decoders.append(decoder)
        return decoder

    async def _decode(self, decoder: _Decoder, body: bytes, is_json: bool
                      ) -> otlp.DecodedSpans:
        answer = decoder.loop.create_future()
        decoder.waiting.append(answer)
        try:
            decoder.writer.write(_REQUEST.pack(len(body), is_json))
            decoder.writer.write(body)
            await decoder.writer.drain()
        except (ConnectionError, OSError, RuntimeError) as error:
            answer.cancel()
            raise DecoderDied(f"a decoder process ended ({error}); retry") from error
        status, data = await answer
        if status == _REFUSED:
            raise otlp.OtlpDecodeError(data.decode())
        if status == _FAILED:
            raise RuntimeError(f"the decoder failed: {data.decode()}")
        return otlp.PackedSpans.from_wire(data).unpack()

    def close(self) -> None:
        """Let every process go once it has answered what it holds, then wait for it."""
        self._closed = True
        decoders, self._decoders = self._decoders, []
        for decoder in decoders:
            # The end of input tells the process to exit; closing the transport alone would
            # close the socket only at the event loop's next turn, after the join below.
            with contextlib.suppress(OSError):
                decoder.sock.shutdown(socket.SHUT_WR)
            with contextlib.suppress(Exception):
                if decoder.loop.is_closed():
                    decoder.sock.close()
                else:
                    decoder.writer.close()
        for decoder in decoders:
            decoder.process.join(10)
            if decoder.process.is_alive():
                decoder.process.kill()
                decoder.process.join(5)
