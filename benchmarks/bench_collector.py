"""The collector: sustained ingest from the official OTLP/HTTP exporter, and its ceiling with
pre-encoded requests from concurrent senders.

Spans are realistic vlmscope spans (row, encoder with top-5, LLM, in equal shares; no
embedding vectors), made once with the real SDK. The collector is a `vlmscope collect`
subprocess on a fresh store, pinned with ``taskset`` to ``--cpus`` (default: 2 cores) when
the machine has more; senders run on the other cores then.

1. Sustained: one client process with the official ``OTLPSpanExporter`` behind a
   ``BatchSpanProcessor`` (512 spans per request) exports ``--spans`` spans; the clock runs from
   the first export to ``shutdown()`` returning (the client's own export time) and, separately,
   until the store holds the last span. "keeps up" = store time within 20% of client time.
2. Ceiling: ``--senders`` processes (2, 16 and 64 in turn by default: the more wait at
   once, the more requests a commit takes) post pre-encoded 512-span protobuf requests
   (fresh ids each), ``--requests`` each, as fast as the collector acknowledges them.
3. Commit path (``--only commit-path``): the same requests decoded in this process, then
   committed one request a commit and all queued at once: what the store can take with no
   HTTP and no decoding in the way.
4. Decode stages (``--only decode``): a decoder process's work on one request, stage by
   stage, in this process.

The collector decodes with the native decoder when it is built; ``VLMSCOPE_PURE_PYTHON=1``
measures the pure-Python one.

    .venv/bin/python benchmarks/bench_collector.py [--spans 60000] [--senders 2,16,64]
        [--requests N] [--cpus 0,1] [--only sustained|ceiling|commit-path|decode]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from workloads import make_spans

SPANS_PER_REQUEST = 512


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_collector(db: Path, cpus: str | None, decoders: int | None = None
                    ) -> tuple[subprocess.Popen, str]:
    """A collector subprocess on ``db`` (pinned to ``cpus``); returns it and its URL."""
    port = free_port()
    command = [sys.executable, "-m", "vlmscope", "collect", "--db", str(db), "--port",
               str(port)]
    if decoders is not None:
        command += ["--decoders", str(decoders)]
    if cpus and shutil.which("taskset"):
        command = ["taskset", "-c", cpus, *command]
    process = subprocess.Popen(command)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if requests.get(url + "/health", timeout=1).status_code == 200:
                return process, url
        except requests.RequestException:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("the collector did not start")


def tree_cpu_seconds(pid: int) -> tuple[float, float]:
    """CPU seconds (user + system) used so far by process ``pid`` (the collector) and by its
    live children (its decoder processes); zeros where /proc is not there."""
    tick = os.sysconf("SC_CLK_TCK")
    own = children = 0.0
    try:
        entries = os.listdir("/proc")
    except OSError:
        return 0.0, 0.0
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        seconds = (int(fields[11]) + int(fields[12])) / tick
        if int(entry) == pid:
            own += seconds
        elif int(fields[1]) == pid:  # fields[1]: the parent's pid
            children += seconds
    return own, children


def committed(url: str) -> int:
    """Spans the collector has committed so far."""
    return requests.get(url + "/health", timeout=10).json()["committed_spans"]


def official_client(url: str, count: int, result: mp.Queue) -> None:
    """Export ``count`` spans with the official OTLP/HTTP exporter; report the time taken."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    spans = make_spans(count)
    processor = BatchSpanProcessor(OTLPSpanExporter(endpoint=url + "/v1/traces"),
                                   max_queue_size=len(spans) + 1,
                                   max_export_batch_size=SPANS_PER_REQUEST,
                                   schedule_delay_millis=50)
    started = time.perf_counter()
    for span in spans:
        processor.on_end(span)
    processor.shutdown()
    result.put((started, time.perf_counter(), len(spans)))


def encoded_requests(count: int, seed: int, split_traces: bool = False) -> list[bytes]:
    """``count`` protobuf requests of 512 realistic spans, with times moving forward as a
    live client's do. The spans are a stream of whole pipeline rows (row, encoder and LLM
    span each) cut into requests of 512, so a row now and then starts in one request and
    ends in the next, as a batching client sends them; every three requests (512 rows) the
    stream repeats with fresh ids, consistently: spans that share a trace share its new
    trace id, and parent ids, links and the LLM span's encoder span id follow their spans'
    new ids. ``split_traces`` gives every span
    a trace of its own instead (what this benchmark sent until 2026-12-01): no pipeline row
    ever completes, and every encoder and LLM record waits in the store for a row span that
    never comes."""
    import random

    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    from vlmscope import conventions as cv

    stream = make_spans(3 * SPANS_PER_REQUEST)
    templates = [encode_spans(stream[i:i + SPANS_PER_REQUEST])
                 for i in range(0, len(stream), SPANS_PER_REQUEST)]
    rng = random.Random(seed)
    bodies = []
    clock = time.time_ns()
    traces: dict[bytes, bytes] = {}
    spans: dict[bytes, bytes] = {}
    for n in range(count):
        template = templates[n % len(templates)]
        if n % len(templates) == 0:
            traces, spans = {}, {}
        for resource_spans in template.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    clock += 20_000
                    if split_traces:
                        span.trace_id = rng.randbytes(16)
                        span.span_id = rng.randbytes(8)
                    else:
                        span.trace_id = traces.setdefault(bytes(span.trace_id),
                                                          rng.randbytes(16))
                        span.span_id = spans.setdefault(bytes(span.span_id), rng.randbytes(8))
                        if span.parent_span_id:
                            span.parent_span_id = spans.setdefault(
                                bytes(span.parent_span_id), rng.randbytes(8))
                        # The LLM span names and links the encoder span it read: follow it.
                        for link in span.links:
                            link.trace_id = traces.setdefault(bytes(link.trace_id),
                                                              rng.randbytes(16))
                            link.span_id = spans.setdefault(bytes(link.span_id),
                                                            rng.randbytes(8))
                        for attribute in span.attributes:
                            if attribute.key == cv.VISION_ENCODER_SPAN_ID:
                                old = bytes.fromhex(attribute.value.string_value)
                                attribute.value.string_value = spans.setdefault(
                                    old, rng.randbytes(8)).hex()
                    duration = span.end_time_unix_nano - span.start_time_unix_nano
                    span.start_time_unix_nano = clock
                    span.end_time_unix_nano = clock + duration
        bodies.append(template.SerializeToString())
    return bodies


def sender(url: str, count: int, seed: int, cpus: str | None, ready: mp.Barrier,
           result: mp.Queue, split_traces: bool = False) -> None:
    """Post ``count`` pre-encoded requests back to back on one keep-alive connection
    (``http.client``: ``requests`` cost the senders 2.3-2.6 us of CPU a span, on the same
    2 cores as the collector here); report the time taken."""
    import http.client
    from urllib.parse import urlsplit

    if cpus:
        os.sched_setaffinity(0, {int(c) for c in cpus.split(",")})
    bodies = encoded_requests(count, seed, split_traces)
    where = urlsplit(url)
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=60)
    headers = {"Content-Type": "application/x-protobuf"}
    ready.wait()
    started = time.perf_counter()
    cpu = time.process_time()
    for body in bodies:
        while True:
            connection.request("POST", "/v1/traces", body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            if response.status == 200:
                break
            time.sleep(0.05)  # 503: the store lags; retry as an OTLP client does
    connection.close()
    result.put((started, time.perf_counter(), count * SPANS_PER_REQUEST,
                time.process_time() - cpu))


def sustained(db: Path, spans: int, cpus: str | None) -> None:
    """Benchmark 1: the official exporter against the collector."""
    process, url = start_collector(db, cpus)
    try:
        result: mp.Queue = mp.Queue()
        client = mp.Process(target=official_client, args=(url, spans, result))
        client.start()
        started, finished, sent = result.get(timeout=600)
        while committed(url) < sent:
            time.sleep(0.005)
        stored_at = time.perf_counter()
        client.join()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
    client_s, store_s = finished - started, stored_at - started
    print(f"sustained, official OTLP/HTTP exporter: {sent} spans, client export "
          f"{client_s:.2f} s ({sent / client_s:,.0f} spans/s), last span stored after "
          f"{store_s:.2f} s: store/client = {store_s / client_s:.3f}")


def ceiling(db: Path, senders: int, per_sender: int, cpus: str | None,
            decoders: int | None, split_traces: bool = False) -> None:
    """Benchmark 2: pre-encoded 512-span requests from concurrent senders."""
    all_cpus = sorted(os.sched_getaffinity(0))
    collector_cpus = {int(c) for c in cpus.split(",")} if cpus else set()
    other = [c for c in all_cpus if c not in collector_cpus]
    sender_cpus = ",".join(map(str, other)) if len(other) >= senders else None
    process, url = start_collector(db, cpus, decoders)
    try:
        cpu_before = tree_cpu_seconds(process.pid)
        result: mp.Queue = mp.Queue()
        ready = mp.Barrier(senders)
        workers = [mp.Process(target=sender, args=(url, per_sender, i, sender_cpus, ready,
                                                   result, split_traces))
                   for i in range(senders)]
        for worker in workers:
            worker.start()
        reports = [result.get(timeout=600) for _ in workers]
        for worker in workers:
            worker.join()
        total = committed(url)
        cpu_after = tree_cpu_seconds(process.pid)
        main_cpu, decoder_cpu = (after - before for after, before in
                                 zip(cpu_after, cpu_before, strict=True))
        collector_cpu = main_cpu + decoder_cpu
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
    started = min(r[0] for r in reports)
    finished = max(r[1] for r in reports)
    sent = sum(r[2] for r in reports)
    sender_cpu = sum(r[3] for r in reports)
    assert total == sent, (total, sent)
    print(f"ceiling, {senders} senders x {per_sender} pre-encoded {SPANS_PER_REQUEST}-span "
          f"requests: {sent} spans in {finished - started:.2f} s = "
          f"{sent / (finished - started):,.0f} spans/s acknowledged (= committed); collector "
          f"on cpus {cpus or 'all'} with {decoders if decoders is not None else 'default'} "
          f"decoder processes, senders on {sender_cpus or 'the same cpus'}; "
          f"{'every span in its own trace' if split_traces else 'whole traces'}")
    print(f"  CPU a span: collector and its decoders {collector_cpu / sent * 1e6:.1f} us "
          f"(main process {main_cpu / sent * 1e6:.1f}, decoders "
          f"{decoder_cpu / sent * 1e6:.1f}), "
          f"senders {sender_cpu / sent * 1e6:.1f} us (posting only); "
          f"{(collector_cpu + sender_cpu) / (finished - started):.2f} cores busy on average")


def commit_path(folder: Path, requests: int, split_traces: bool = False) -> None:
    """Benchmark 3 (no HTTP, no decoder processes): ``requests`` pre-encoded requests decoded
    in this process, then committed by a ``SpanIngestor`` one request a commit (what two
    senders that each wait for their acknowledgement allow) and all queued at once (the
    largest groups). The decode time is reported apart."""
    from vlmscope.collectors import otlp
    from vlmscope.collectors.ingest import SpanIngestor

    bodies = encoded_requests(requests + 1, seed=7, split_traces=split_traces)
    started = time.perf_counter()
    decoded = [otlp.decode_body(body, False) for body in bodies]
    decode_s = time.perf_counter() - started
    spans = requests * SPANS_PER_REQUEST
    print(f"commit path: decoding {len(bodies)} requests in this process took "
          f"{decode_s / (len(bodies) * SPANS_PER_REQUEST) * 1e6:.1f} us a span")
    for grouping in ("one request a commit", "all queued at once"):
        ingestor = SpanIngestor(folder / f"commit-{grouping.split()[0]}.duckdb")
        ingestor.submit(decoded[0]).result()  # the store is created and migrated
        started = time.perf_counter()
        if grouping.startswith("one"):
            for request in decoded[1:]:
                ingestor.submit(request).result()
        else:
            for future in [ingestor.submit(request) for request in decoded[1:]]:
                future.result()
        elapsed = time.perf_counter() - started
        ingestor.close()
        print(f"commit path, {grouping}: {spans / elapsed:,.0f} spans/s committed")


def decode_stages(requests: int) -> None:
    """Benchmark 4 (``--only decode``): what a decoder process spends on one request, stage
    by stage, in this process (each stage the best of five passes over ``requests``
    pre-encoded requests, one request alive at a time as in a decoder): the protobuf parse
    that validates the body, the native decoder's span items, their assembly into the
    store's tables by the native converter and by the Python reference, and packing the
    tables for the trip back. The whole decode is timed first with the garbage collector as
    the imports left it, then every stage with the imported objects frozen
    (``gc.freeze``) and young collections every 50,000 allocations, as the collector's
    decoder processes run."""
    import gc

    from vlmscope.collectors import otlp

    bodies = encoded_requests(requests, seed=11)
    limits = otlp.DEFAULT_LIMITS

    def best(work) -> float:
        times = []
        for _ in range(5):
            started = time.perf_counter()
            for body in bodies:
                work(body)
            times.append((time.perf_counter() - started) / len(bodies))
        return min(times) * 1e3

    if not otlp.native_decoder():
        print("decode stages: the native decoder is not built")
        return
    stages = {
        "protobuf parse": lambda body: otlp.parse_protobuf(body),
        "native span items": lambda body: otlp._native_items(body, limits),
        "span items assembled by the native converter": lambda body: otlp._assemble(
            otlp._native_items(body, limits)),
        "span items assembled by the Python reference": lambda body: otlp._assemble_python(
            otlp._native_items(body, limits)),
        "whole decode, packed": lambda body: otlp.decode_body_packed(body, False),
    }
    print(f"decode stages, whole decode, packed, the garbage collector as imports left it: "
          f"{best(stages['whole decode, packed']):.2f} ms a {SPANS_PER_REQUEST}-span request")
    gc.freeze()  # as in the collector's decoder processes
    thresholds = gc.get_threshold()
    gc.set_threshold(50_000, 20, 100)
    for name, work in stages.items():
        print(f"decode stages, imports frozen, {name}: {best(work):.2f} ms")
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def host_loop_ms() -> float:
    """Milliseconds a fixed pure-Python loop takes here now (the best of three): how fast
    the shared host runs at the moment, to read figures taken at different times by."""
    times = []
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for i in range(2_000_000):
            total += i
        times.append(time.perf_counter() - started)
    return min(times) * 1e3


def main() -> None:
    """Run the benchmarks on fresh stores and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=60_000)
    parser.add_argument("--senders", default="2,16,64",
                        help="sender counts the ceiling runs with, in turn (default 2,16,64)")
    parser.add_argument("--requests", type=int,
                        help="requests per sender (default: 640 over all the senders of a "
                        "run, at least 5 each; 200 for the commit path)")
    available = sorted(os.sched_getaffinity(0))
    parser.add_argument("--cpus", default=",".join(map(str, available[:2]))
                        if len(available) > 2 else None,
                        help="cores for the collector (default: the first 2 when there "
                        "are more)")
    parser.add_argument("--decoders", type=int, help="decoder processes of the collector")
    parser.add_argument("--split-traces", action="store_true",
                        help="every span in a trace of its own (no pipeline row completes; "
                        "the requests this benchmark sent until 2026-12-01)")
    parser.add_argument("--only", choices=("sustained", "ceiling", "commit-path", "decode"),
                        help="run one benchmark")
    args = parser.parse_args()
    from vlmscope.collectors.otlp import native_decoder

    print(f"machine: {os.cpu_count()} cores, collector pinned to {args.cpus or 'all'}, "
          f"OTLP decoder: {'native' if native_decoder() else 'pure Python'}, "
          f"load average {os.getloadavg()[0]:.2f}; host speed: a fixed Python loop took "
          f"{host_loop_ms():.0f} ms (these shared machines vary by 15% and more)")
    with tempfile.TemporaryDirectory() as folder:
        if args.only in (None, "sustained"):
            sustained(Path(folder) / "sustained.duckdb", args.spans, args.cpus)
        if args.only in (None, "ceiling"):
            for count in (int(c) for c in args.senders.split(",")):
                ceiling(Path(folder) / f"ceiling-{count}.duckdb", count,
                        args.requests or max(5, 640 // count), args.cpus, args.decoders,
                        args.split_traces)
        if args.only in (None, "commit-path"):
            commit_path(Path(folder), args.requests or 200, args.split_traces)
        if args.only in (None, "decode"):
            decode_stages(min(args.requests or 30, 30))


if __name__ == "__main__":
    main()
