"""The ingestor's commit: a fresh request goes to DuckDB in one script whose span insert skips
what the store holds; a resent one falls back to dropping the stored spans and their records
first. Either way every span and pipeline row is stored once. Real SDK spans, real OTLP
protobuf, a real DuckDB file."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import vlmscope
from vlmscope.collectors import otlp
from vlmscope.collectors.ingest import SpanIngestor, skip_stored
from vlmscope.collectors.store import RecentSpans, StoreWriter, merge_batches

TABLES = ("spans", "row_records", "encoder_records", "llm_records", "pipeline_rows")


def traced_rows(count: int, first: int = 0) -> list:
    """Finished SDK spans of ``count`` pipeline rows (row, encoder, LLM span each)."""
    memory = InMemorySpanExporter()
    vlmscope.configure(exporter=memory, batch=False)
    for i in range(first, first + count):
        with vlmscope.trace_row(f"row-{i}", cohort="c", expected="cat"):
            with vlmscope.encoder_span("resnet18", checkpoint_sha256="ab" * 32) as enc:
                enc.record(top_k_labels=[["cat", "dog"]], top_k_scores=[[0.7, 0.2]],
                           image_sha256=["cd" * 32])
            with vlmscope.llm_span(model="m", provider="p", instruction="what?") as llm:
                llm.set_output(f"a cat {i}", input_tokens=3, output_tokens=2)
    vlmscope.shutdown()
    return list(memory.get_finished_spans())


def decoded(spans: list) -> otlp.DecodedSpans:
    return otlp.decode_body(encode_spans(spans).SerializeToString(), False)


def counts(path: Path) -> dict[str, int]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in TABLES}
    finally:
        con.close()


class CountingPrepare:
    """``skip_stored``, counting its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, con, batch):  # type: ignore[no-untyped-def]
        self.calls += 1
        return skip_stored(con, batch)


def test_a_fresh_request_needs_no_lookup_and_a_resent_one_is_stored_once(tmp_path: Path):
    path = tmp_path / "once.duckdb"
    first, second = traced_rows(4), traced_rows(3, first=4)
    writer = StoreWriter(path)
    prepare = CountingPrepare()
    assert writer.write(decoded(first).batch, prepare, new_spans_only=True) == 12
    assert prepare.calls == 0  # the one-script path wrote every span
    # Sent again (a client that never saw its acknowledgement): nothing new is written.
    assert writer.write(decoded(first).batch, prepare, new_spans_only=True) == 0
    assert prepare.calls == 1
    # Half stored, half new, in one batch: only the new spans and their records go in.
    mixed = merge_batches([decoded(first[:6]).batch, decoded(second).batch])
    assert writer.write(mixed, prepare, new_spans_only=True) == 9
    assert prepare.calls == 2
    # The fallback's rollback left the merge state right: the next fresh batch merges.
    third = traced_rows(2, first=7)
    assert writer.write(decoded(third).batch, prepare, new_spans_only=True) == 6
    assert prepare.calls == 2
    writer.close()
    assert counts(path) == {"spans": 27, "row_records": 9, "encoder_records": 9,
                            "llm_records": 9, "pipeline_rows": 9}
    con = duckdb.connect(str(path), read_only=True)
    outputs = sorted(o for (o,) in con.execute("SELECT output FROM pipeline_rows").fetchall())
    con.close()
    assert outputs == sorted(f"a cat {i}" for i in range(9))


def test_new_spans_only_needs_the_prepare_that_drops_stored_spans(tmp_path: Path):
    writer = StoreWriter(tmp_path / "x.duckdb")
    with pytest.raises(ValueError, match="prepare"):
        writer.write(decoded(traced_rows(1)).batch, new_spans_only=True)
    writer.close()


def test_a_row_split_over_two_requests_is_whole_once_both_are_committed(tmp_path: Path):
    """The encoder and LLM parts of a row wait in the store (and in the writer's memory)
    until its row span arrives in the next request, as a batching client splits them."""
    path = tmp_path / "split.duckdb"
    spans = traced_rows(3)  # per row: encoder, LLM, then the row span ends
    ingestor = SpanIngestor(path)
    for part in (spans[:5], spans[5:]):
        ingestor.submit(decoded(part)).result(timeout=30)
    state = ingestor.writer._merge_state
    assert state.parts == {}  # claimed from memory, nothing waits
    ingestor.close()
    con = duckdb.connect(str(path), read_only=True)
    rows = con.execute("SELECT row_id, output, encoder_model FROM pipeline_rows "
                       "ORDER BY row_id").fetchall()
    ((waiting,),) = con.execute("SELECT count(*) FROM pipeline_row_parts").fetchall()
    con.close()
    assert rows == [(f"row-{i}", f"a cat {i}", "resnet18") for i in range(3)]
    assert waiting == 0


def test_writers_run_with_the_default_settings_unless_told_otherwise(tmp_path: Path):
    from vlmscope.collectors.store import DEFAULT_SETTINGS

    def threshold(writer: StoreWriter) -> str:
        writer.open()
        with writer.cursor() as cursor:
            ((value,),) = cursor.execute(
                "SELECT current_setting('checkpoint_threshold')").fetchall()
        writer.close()
        return value

    def as_duckdb_says(value: str) -> str:
        con = duckdb.connect()
        con.execute("SET checkpoint_threshold = ?", [value])
        return con.execute("SELECT current_setting('checkpoint_threshold')").fetchall()[0][0]

    ingestor = SpanIngestor(tmp_path / "a.duckdb")
    ingestor.submit(decoded(traced_rows(1))).result(timeout=30)
    assert threshold(ingestor.writer) == as_duckdb_says(DEFAULT_SETTINGS["checkpoint_threshold"])
    assert as_duckdb_says(DEFAULT_SETTINGS["checkpoint_threshold"]) != duckdb.connect().execute(
        "SELECT current_setting('checkpoint_threshold')").fetchall()[0][0]
    ingestor.close()
    told = StoreWriter(tmp_path / "b.duckdb", settings={"checkpoint_threshold": "32MB"})
    assert threshold(told) == as_duckdb_says("32MB")


def test_a_setting_name_that_is_not_one_is_refused(tmp_path: Path):
    with pytest.raises(ValueError, match="setting name"):
        StoreWriter(tmp_path / "x.duckdb", settings={"threads; DROP TABLE spans": 1})


def test_a_failed_write_leaves_the_next_one_optimised_and_whole(tmp_path: Path):
    """Appends run with DuckDB's optimiser off; a write failing between the pragmas drops
    its connection, so the next write (whose span insert needs the optimiser to prune by
    start time) runs on a fresh one, optimiser on."""
    import pyarrow as pa

    from vlmscope.collectors.convert import SpanBatch

    path = tmp_path / "fail.duckdb"
    writer = StoreWriter(path)
    good = decoded(traced_rows(2)).batch
    broken = SpanBatch(good.spans, {**good.derived,
                                    "row_records": pa.table({"trace_id": ["t"], "x": [1]})})
    with pytest.raises(duckdb.Error):
        writer.write(broken, skip_stored, new_spans_only=True)
    assert writer._con is None  # dropped with the optimiser off; the next write opens anew
    assert writer.write(good, skip_stored, new_spans_only=True) == 6
    # The writer's own connection (a cursor would have settings of its own).
    assert writer._con.execute("SELECT current_setting('enable_optimizer')").fetchall() == [
        (True,)]
    writer.close()
    assert counts(path)["pipeline_rows"] == 2


def test_a_request_packed_for_the_trip_from_a_decoder_process_comes_back_equal():
    original = decoded(traced_rows(5))
    original.rejected, original.message = 2, "two spans had no name"
    wire = b"".join(bytes(part) for part in otlp.PackedSpans.pack(original).wire())
    back = otlp.PackedSpans.from_wire(wire).unpack()
    assert back.batch.spans.equals(original.batch.spans)
    assert list(back.batch.derived) == list(original.batch.derived)
    for name, table in original.batch.derived.items():
        assert back.batch.derived[name].equals(table), name
    assert (back.keys, back.rejected, back.message, back.evaluations) == (
        original.keys, 2, "two spans had no name", original.evaluations)


def test_a_group_commits_the_row_split_between_two_requests_whole(tmp_path: Path):
    """Requests committed as one group make the rows of their records together: the row
    that two of them share has its encoder and LLM parts."""
    spans = traced_rows(3)
    group = merge_batches([decoded(spans[:4]).batch, decoded(spans[4:]).batch])
    assert group.num_spans == 9
    path = tmp_path / "group.duckdb"
    writer = StoreWriter(path)
    assert writer.write(group, skip_stored, new_spans_only=True) == 9
    writer.close()
    con = duckdb.connect(str(path), read_only=True)
    rows = con.execute("SELECT row_id, output, encoder_model, llm_model FROM pipeline_rows "
                       "ORDER BY row_id").fetchall()
    con.close()
    assert rows == [(f"row-{i}", f"a cat {i}", "resnet18", "m") for i in range(3)]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.lists(st.tuples(st.integers(0, 40), st.integers(0, 60)),
                                   min_size=1, max_size=6), st.booleans()),
                min_size=1, max_size=40),
       st.integers(1, 12), st.integers(-5, 30))
def test_recent_spans_never_takes_a_stored_span_for_a_new_one(steps, capacity, floor):
    """Batches of (key, start) are committed (noted) or asked about, at random: a batch
    that ``all_new`` calls new holds no span committed before with the same key and start
    (a resent span is the same span, so it has the same start), however many were
    forgotten; and while no more spans were noted than it holds, none is forgotten."""
    recent = RecentSpans(floor, capacity)
    committed: set[tuple[int, int]] = set()
    noted = 0
    for spans, commit in steps:
        hashes = [hash((str(key), "s")) for key, _ in spans]
        first = min(start for _, start in spans)
        if recent.all_new(hashes, first):
            assert not committed.intersection(spans)
        if commit:
            recent.add(hashes, max(start for _, start in spans))
            committed.update(spans)
            noted += len(spans)
    if noted <= capacity:
        assert recent.floor == floor


def test_recent_spans_skip_the_lookup_only_for_spans_that_start_past_the_store(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A fresh connection knows nothing of what the store held: spans that start before
    the latest stored one go through the lookup (and one resent is stored once), those
    after it do not; a resent batch is never taken for new."""
    path = tmp_path / "recent.duckdb"
    verdicts: list[bool] = []
    real = RecentSpans.all_new

    def spy(self, hashes, first_start):  # type: ignore[no-untyped-def]
        verdicts.append(real(self, hashes, first_start))
        return verdicts[-1]

    monkeypatch.setattr(RecentSpans, "all_new", spy)
    early, late = traced_rows(3), traced_rows(3, first=3)
    writer = StoreWriter(path)
    assert writer.write(decoded(late).batch, skip_stored, new_spans_only=True) == 9
    assert writer.write(decoded(late).batch, skip_stored, new_spans_only=True) == 0
    assert verdicts == [True, False]
    writer.close()
    writer = StoreWriter(path)  # a restart: the store's latest start sets the floor
    assert writer.write(decoded(late[:3]).batch, skip_stored, new_spans_only=True) == 0
    assert writer.write(decoded(early).batch, skip_stored, new_spans_only=True) == 9
    newer = traced_rows(2, first=6)
    assert writer.write(decoded(newer).batch, skip_stored, new_spans_only=True) == 6
    writer.close()
    assert verdicts == [True, False, False, False, True]
    assert counts(path)["spans"] == 24
