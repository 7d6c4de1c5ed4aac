"""The materialised ``pipeline_rows`` equals the plain join of the record tables, however
the records arrive: in any order, split over any batches, with parts arriving after their
row, repeated row ids, ties and missing start times; and after compaction and refresh."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests import pipeline_row_reference
from tests.pipeline_row_reference import REFERENCE, store_at_version
from vlmscope.collectors import _assembly, _merge, facts
from vlmscope.collectors.normalize import ENCODER_SCHEMA, LLM_SCHEMA, ROW_SCHEMA, insert_tables
from vlmscope.collectors.schema import SCHEMA_VERSION, migrate

T0 = dt.datetime(2026, 1, 1)


def _time(rng: random.Random) -> dt.datetime | None:
    # Few distinct values, so that ties in start time happen; now and then none at all.
    return None if rng.random() < 0.05 else T0 + dt.timedelta(milliseconds=rng.randrange(6))


def make_records(rng: random.Random, keys: int, repeats: bool, links: bool = False,
                 odd_durations: bool = False) -> list[tuple[str, dict]]:
    """Random records of ``keys`` (trace, row) keys: 0-1 row spans (0-2 with ``repeats``),
    0-3 encoder (some without a reading) and 0-3 LLM records each (some sharing a span;
    with ``links``, some linking to one of the key's encoder spans, or to one that never
    comes; with ``odd_durations``, LLM calls of no, infinite, NaN or sub-nanosecond-rounded
    duration), plus records without a row id."""
    records: list[tuple[str, dict]] = []
    for k in range(keys):
        trace, row = f"t{k % 5}", f"r{k}"
        for n in range(rng.choice([0, 1, 1, 1, 1, 2] if repeats else [0, 1, 1, 1])):
            records.append(("row_records", dict(
                trace_id=trace, span_id=f"rs{k}-{n}", row_id=row, run_name="run",
                cohort=rng.choice(["a", "b", None]), expected=rng.choice(["cat", "dog", None]),
                objects=rng.choice([None, ["cat"], ["dog", "sofa"]]),
                instruction=rng.choice(["what?", None]), image_sha256=rng.choice(["i1", None]),
                start_time=_time(rng), duration_ms=rng.random(),
                status_code=rng.choice(["OK", "ERROR", "UNSET"]),
                status_message=rng.choice([None, "boom"]),
                instruction_kind=rng.choice([None, "name", "count"]),
                batch_size=rng.choice([None, 4]))))
        encoder_spans = []
        for n in range(rng.choice([0, 1, 1, 2, 3])):
            span = f"es{k}-{rng.randrange(2)}"
            encoder_spans.append(span)
            records.append(("encoder_records", dict(
                trace_id=trace, span_id=span, record_index=n, row_id=row,
                image_sha256=f"img{n}", model=f"m{n}", architecture="resnet",
                checkpoint_sha256=rng.choice(["aa", "bb"]), layer=None, embedding_dim=512,
                top_k_labels=rng.choice([[f"l{n}", "x"], [f"l{n}", "x"], None]),
                top_k_scores=[0.5 + n / 10, 0.1],
                top_k_class_ids=None, entropy=float(n), embedding_l2_norm=None,
                start_time=_time(rng), duration_ms=float(n),
                status_code=rng.choice(["OK", "ERROR"]),
                multi_label=rng.choice([None, True, False]), batch_size=rng.choice([None, 8]))))
        for n in range(rng.choice([0, 1, 1, 2, 3])):
            records.append(("llm_records", dict(
                trace_id=trace, span_id=f"ls{k}-{rng.randrange(2)}",
                record_index=n, row_id=row, model=f"h{n}", provider=None,
                instruction=rng.choice(["say", None]), output=f"out{n}",
                input_tokens=n, output_tokens=n + 1,
                encoder_span_id=rng.choice([None, "gone", *encoder_spans, *encoder_spans])
                if links else None,
                start_time=_time(rng), duration_ms=rng.choice(
                    [float(n), None, float("inf"), float("nan"), 0.0000015, 1e-7, 2.9999999])
                if odd_durations else float(n), status_code="OK",
                instruction_kind=rng.choice([None, "list"]),
                batch_size=rng.choice([None, 2, 0]))))
    records.append(("encoder_records", dict(
        trace_id="t0", span_id="loose", record_index=0, row_id=None, start_time=T0)))
    return records


_SCHEMAS = {"row_records": ROW_SCHEMA, "encoder_records": ENCODER_SCHEMA,
            "llm_records": LLM_SCHEMA}


def write_in_batches(con: duckdb.DuckDBPyConnection, records: list[tuple[str, dict]],
                     rng: random.Random, state: facts.MergeState | None = None) -> None:
    """Insert ``records`` in a random order, in random batches, each through the store's
    one write path (records, then the merge; with a writer's ``state`` when given), one
    transaction a batch (DuckDB assembles each batch's parts from its records)."""
    order = records[:]
    rng.shuffle(order)
    while order:
        size = rng.randint(1, 12)
        batch, order = order[:size], order[size:]
        tables = {}
        for name, schema in _SCHEMAS.items():
            rows = [r for t, r in batch if t == name]
            if rows:
                tables[name] = pa.Table.from_pylist(rows, schema=schema)
        con.execute("BEGIN")
        insert_tables(con, tables, state=state)
        con.execute("COMMIT")


def _rows(con: duckdb.DuckDBPyConnection, query: str) -> list[tuple]:
    return sorted(con.execute(query).fetchall(), key=repr)


@pytest.mark.parametrize("seed", range(24))
def test_materialised_rows_equal_the_join(tmp_path: Path, seed: int,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """With one row span per key the view equals the join at once; with repeated row ids
    (half the seeds) after compaction; after a full refresh always. A third of the seeds
    compact during the merges too."""
    if seed % 3 == 0:
        monkeypatch.setattr(_merge, "COMPACT_AT", 2)
    rng = random.Random(seed)
    repeats = seed % 2 == 1
    links = seed % 6 >= 3  # LLM records that name their encoder span
    state = facts.MergeState() if seed % 4 < 2 else None  # as the store writer merges
    con = duckdb.connect(str(tmp_path / "facts.duckdb"))
    migrate(con)
    write_in_batches(con, make_records(rng, keys=40, repeats=repeats, links=links), rng,
                     state)
    expected = _rows(con, REFERENCE)
    assert len(expected) > 20
    if not repeats and not links:
        assert _rows(con, "SELECT * FROM pipeline_rows") == expected

    con.execute("BEGIN")
    facts.compact(con, state)
    con.execute("COMMIT")
    assert _rows(con, "SELECT * FROM pipeline_rows") == expected
    # Nothing that waits belongs to a row in the facts any more.
    ((late,),) = con.execute(
        f"SELECT count(*) FROM {facts.PARTS} p JOIN {facts.FACTS} f "
        "USING (trace_id, row_id)").fetchall()
    assert late == 0

    con.execute("BEGIN")
    facts.refresh(con)
    con.execute("COMMIT")
    assert _rows(con, "SELECT * FROM pipeline_rows") == expected


@pytest.mark.parametrize("seed", range(6))
def test_a_row_shows_the_encoder_record_its_llm_call_linked_to_as_soon_as_it_is_written(
        tmp_path: Path, seed: int) -> None:
    """Records in the order in-process tracing ends spans (each row's encoder and LLM
    records before its row span), in random batches: after every batch the view equals the
    join, the linked encoder record winning over a later one or one with a reading."""
    rng = random.Random(seed)
    records = make_records(rng, keys=40, repeats=False, links=True)
    # A row whose LLM call used a hooked tower's reading-less record, not the later
    # zero-shot reading recorded by hand.
    records += [
        ("encoder_records", dict(trace_id="tz", span_id="tower", record_index=0, row_id="z",
                                 start_time=T0, duration_ms=1.0)),
        ("encoder_records", dict(trace_id="tz", span_id="zero-shot", record_index=0,
                                 row_id="z", top_k_labels=["cat"], top_k_scores=[0.9],
                                 start_time=T0 + dt.timedelta(milliseconds=2))),
        ("llm_records", dict(trace_id="tz", span_id="head", record_index=0, row_id="z",
                             output="a cat", encoder_span_id="tower",
                             start_time=T0 + dt.timedelta(milliseconds=3))),
        ("row_records", dict(trace_id="tz", span_id="row-z", row_id="z", start_time=T0)),
    ]
    rows = [r for r in records if r[0] == "row_records"]
    parts = [r for r in records if r[0] != "row_records"]
    rng.shuffle(parts)
    con = duckdb.connect(str(tmp_path / "linked.duckdb"))
    migrate(con)
    state = facts.MergeState()
    ordered = parts + rows  # every part before every row span
    while ordered:
        size = rng.randint(1, 12)
        batch, ordered = ordered[:size], ordered[size:]
        write_in_batches(con, batch, random.Random(0), state)
        assert _rows(con, "SELECT * FROM pipeline_rows") == _rows(con, REFERENCE)
    assert con.execute("SELECT encoder_span_id, top_k_labels FROM pipeline_rows "
                       "WHERE row_id = 'z'").fetchall() == [("tower", None)]


def _ns_rows(table: pa.Table) -> list[dict]:
    """``table``'s rows as dicts, start times as epoch nanoseconds."""
    starts = [name for name in table.column_names if name.endswith("_start")]
    for name in starts:
        table = table.set_column(table.schema.get_field_index(name), name,
                                 table.column(name).cast(pa.int64()))
    return table.to_pylist()


@pytest.mark.parametrize("assembler", ["duckdb", "native twin"])
@pytest.mark.parametrize("seed", range(60))
def test_duckdb_assembles_a_batch_as_the_python_reference_does(seed: int,
                                                               assembler: str) -> None:
    """facts.assemble_batch (the one assembler, facts.assemble_sql, run by DuckDB over the
    registered record tables of a batch; or its native twin, given the tables) gives the
    rows of the Python reference, for batches of every size, kinds missing, repeated row
    ids, ties, missing start times, odd durations and links included."""
    twin = None
    if assembler == "native twin":
        # The module itself, not native_twin(): a twin that failed its self-test must fail
        # here rather than be skipped.
        twin = pytest.importorskip("vlmscope.collectors._assembly_native",
                                   reason="the native assembler is not built")
    rng = random.Random(seed)
    records = make_records(rng, keys=30, repeats=seed % 2 == 1, links=seed % 3 > 0,
                           odd_durations=seed % 4 > 1)
    rng.shuffle(records)
    con = duckdb.connect()
    migrate(con)
    start, compared = 0, 0
    while start < len(records):
        size = rng.choice([1, 3, 10, 40, len(records)])
        chunk, start = records[start:start + size], start + size
        tables = {name: pa.Table.from_pylist([r for t, r in chunk if t == name], schema=schema)
                  for name, schema in _SCHEMAS.items()
                  if any(t == name for t, _ in chunk)}
        views = {name: f"_test_{name}" for name in tables}
        for name, table in tables.items():
            con.register(views[name], table)
        in_duckdb = facts.assemble_batch(con, views) if twin is None else \
            _assembly._assemble_natively(twin, tables)
        for view in views.values():
            con.unregister(view)
        assert in_duckdb.schema == facts.SCHEMA
        python = pipeline_row_reference.assemble(tables)
        # Compared as text: a NaN duration is equal to itself only there.
        assert sorted(map(repr, _ns_rows(in_duckdb))) == sorted(map(repr, python))
        compared += len(python)
    assert compared > 20


def test_late_parts_wait_and_are_overlaid(tmp_path: Path) -> None:
    """An LLM part arriving after its row was written shows at once and is compacted in."""
    con = duckdb.connect(str(tmp_path / "late.duckdb"))
    migrate(con)
    row = {"trace_id": "t", "span_id": "r", "row_id": "row-1", "expected": "cat",
           "start_time": T0, "status_code": "OK"}
    llm = {"trace_id": "t", "span_id": "l", "record_index": 0, "row_id": "row-1",
           "output": "a cat", "start_time": T0, "status_code": "ERROR"}
    for name, record in (("row_records", row), ("llm_records", llm)):
        con.execute("BEGIN")
        insert_tables(con, {name: pa.Table.from_pylist([record], schema=_SCHEMAS[name])})
        con.execute("COMMIT")
    assert con.execute(f"SELECT count(*) FROM {facts.PARTS}").fetchall() == [(1,)]
    assert con.execute("SELECT output, status FROM pipeline_rows").fetchall() == [
        ("a cat", "ERROR")]
    con.execute("BEGIN")
    assert facts.compact(con) == 1
    con.execute("COMMIT")
    assert con.execute(f"SELECT count(*) FROM {facts.PARTS}").fetchall() == [(0,)]
    assert con.execute("SELECT output, status FROM pipeline_rows").fetchall() == [
        ("a cat", "ERROR")]


def test_migration_from_a_version_3_store_fills_the_facts(tmp_path: Path) -> None:
    """A store written before the facts existed gets them filled from its records."""
    con = duckdb.connect(str(tmp_path / "old.duckdb"))
    store_at_version(con, 3)
    rng = random.Random(99)
    for name, record in make_records(rng, keys=15, repeats=True):
        if name == "llm_records":  # calls of no duration: the one that started last ended last
            record = {**record, "duration_ms": 0.0}
        con.register("_one", pa.Table.from_pylist([record], schema=_SCHEMAS[name]))
        con.execute(f"INSERT INTO {name} BY NAME SELECT "
                    f"{', '.join(c for c in _VERSION_1_COLUMNS[name])} FROM _one")
        con.unregister("_one")
    before = _rows(con, "SELECT * FROM pipeline_rows")  # the version-1 view
    assert migrate(con) == SCHEMA_VERSION
    old = len(before[0]) if before else 0
    assert [r[:old] for r in _rows(con, "SELECT * FROM pipeline_rows")] == before
    assert _rows(con, "SELECT * FROM pipeline_rows") == _rows(con, REFERENCE)


# The record tables' columns as schema version 1 created them (the columns added since come
# after them).
_VERSION_1_COLUMNS = {
    "row_records": ROW_SCHEMA.names[:13], "encoder_records": ENCODER_SCHEMA.names[:18],
    "llm_records": LLM_SCHEMA.names[:14]}


def test_migrations_7_and_8_keep_the_rows_and_add_the_new_columns(tmp_path: Path) -> None:
    """A version-6 store with rows (some parts still waiting, some LLM records linking to
    an encoder span): migration 7 keeps the pipeline rows as they were and adds the new
    columns, NULL (the shares equal to the durations); migration 8 assembles them again by
    the linked-encoder rule, equal to the join."""
    con = duckdb.connect(str(tmp_path / "v6.duckdb"))
    store_at_version(con, 6)
    rng = random.Random(5)
    for name, record in make_records(rng, keys=30, repeats=False, links=True):
        con.register("_one", pa.Table.from_pylist([record], schema=_SCHEMAS[name]))
        con.execute(f"INSERT INTO {name} BY NAME SELECT "
                    f"{', '.join(c for c in _VERSION_1_COLUMNS[name])} FROM _one")
        con.unregister("_one")
    con.execute("DELETE FROM row_records WHERE row_id IN ('r3', 'r4')")  # parts wait for them
    from vlmscope.collectors.migrations import MIGRATIONS
    for statement in MIGRATIONS[3].statements[2:6]:  # migration 4's refill, as of version 6
        con.execute(statement)
    waiting = con.execute(f"SELECT count(*) FROM {facts.PARTS}").fetchall()[0][0]
    assert waiting > 0
    before = _rows(con, "SELECT * FROM pipeline_rows")
    for statement in MIGRATIONS[6].statements:  # migration 7 alone
        con.execute(statement)
    after = _rows(con, "SELECT * FROM pipeline_rows")
    width = len(before[0])
    assert [r[:width] for r in after] == before
    names = [d[0] for d in con.execute("SELECT * FROM pipeline_rows LIMIT 0").description]
    assert names[width:] == ["encoder_multi_label", "instruction_kind", "batch_size",
                             "encoder_share_ms", "llm_share_ms"]
    at = {name: names.index(name) for name in names}
    for row in after:
        assert row[at["encoder_multi_label"]] is None and row[at["batch_size"]] is None
        assert row[at["encoder_share_ms"]] == row[at["encoder_ms"]]
        assert row[at["llm_share_ms"]] == row[at["llm_ms"]]
    assert con.execute(f"SELECT count(*) FROM {facts.PARTS}").fetchall() == [(waiting,)]
    con.execute("INSERT INTO schema_migrations (version, name) VALUES (7, 'by hand')")
    assert migrate(con) == SCHEMA_VERSION
    assert con.execute(f"SELECT count(*) FROM {facts.PARTS}").fetchall() == [(waiting,)]
    assert _rows(con, "SELECT * FROM pipeline_rows") == _rows(con, REFERENCE)


def test_compaction_finds_repeats_written_by_another_connection(tmp_path: Path) -> None:
    """A connection that merged nothing looks for repeated row ids among all keys."""
    rng = random.Random(7)
    path = tmp_path / "repeats.duckdb"
    con = duckdb.connect(str(path))
    migrate(con)
    write_in_batches(con, make_records(rng, keys=60, repeats=True), rng)
    con.close()
    con = duckdb.connect(str(path))
    expected = _rows(con, REFERENCE)
    assert _rows(con, "SELECT * FROM pipeline_rows") != expected  # stale until compacted
    con.execute("BEGIN")
    assert facts.compact(con) > 0
    con.execute("COMMIT")
    assert _rows(con, "SELECT * FROM pipeline_rows") == expected


def test_the_store_writer_leaves_the_store_compacted(tmp_path: Path) -> None:
    """Spans of a row id traced twice in one trace, written through the exporter: once the
    exporter shuts down, pipeline_rows equals the plain join."""
    import vlmscope
    from vlmscope.collectors.exporter import DuckDBSpanExporter

    path = tmp_path / "traced.duckdb"
    vlmscope.configure(exporter=DuckDBSpanExporter(path), batch=False)
    from vlmscope.tracing import get_tracer

    tracer = get_tracer()
    with tracer.start_as_current_span("agent"):
        for attempt in ("first", "second"):
            with vlmscope.trace_row("row-1", expected="cat"):
                with vlmscope.encoder_span("resnet18") as enc:
                    enc.record(top_k_labels=[[attempt, "x"]], top_k_scores=[[0.9, 0.1]])
                with vlmscope.llm_span(model="head", instruction="what?") as llm:
                    llm.set_output(f"{attempt} answer")
    vlmscope.shutdown()
    con = duckdb.connect(str(path))
    rows = _rows(con, "SELECT * FROM pipeline_rows")
    assert rows == _rows(con, REFERENCE)
    assert [(r[10], r[16]) for r in rows] == [(["second", "x"], "second answer")] * 2


def test_migration_5_keeps_spans_and_evaluations_and_compresses_them(tmp_path: Path) -> None:
    """A version-4 store with rows: after migrating, the same rows, stored with zstd."""
    con = duckdb.connect(str(tmp_path / "v4.duckdb"))
    store_at_version(con, 4)
    con.execute("""INSERT INTO spans (trace_id, span_id, name, kind, start_time, end_time,
                       duration_ms, status_code, attributes)
                   SELECT 't' || i, 's' || i, 'row', 'INTERNAL', TIMESTAMP_NS '2026-01-01',
                          TIMESTAMP_NS '2026-01-01', 0, 'OK', '{"i": ' || i || '}'
                   FROM range(5000) r(i)""")
    con.execute("""INSERT INTO evaluations SELECT 'run', 'r' || i, 't' || i, 's' || i, 'ev',
                       1.0, true, 'match', 'because ' || i, '{}', 'CODE'
                   FROM range(5000) r(i)""")
    before = {t: _rows(con, f"SELECT * FROM {t}") for t in ("spans", "evaluations")}
    assert migrate(con) == SCHEMA_VERSION
    con.execute("CHECKPOINT")
    for table, rows in before.items():
        assert _rows(con, f"SELECT * FROM {table}") == rows
    stored = dict(con.execute(
        "SELECT column_name, any_value(compression) FROM pragma_storage_info('evaluations') "
        "WHERE segment_type = 'VARCHAR' GROUP BY ALL").fetchall())
    assert stored["explanation"] == "ZSTD" and stored["trace_id"] == "ZSTD"


def test_migration_6_adds_the_run_name_to_eval_runs_and_keeps_their_rows(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "v5.duckdb"))
    store_at_version(con, 5)
    con.execute("INSERT INTO eval_runs VALUES ('r1', 'ground_truth_match', '{}', 'c', ['sha'], "
                "'{\"judged\": 3}', TIMESTAMP '2026-01-01')")
    assert migrate(con) == SCHEMA_VERSION
    assert con.execute("SELECT run_id, cohort, checkpoints, summary, run_name "
                       "FROM eval_runs").fetchall() == [
        ("r1", "c", ["sha"], '{"judged": 3}', None)]


@pytest.mark.parametrize("limit", [facts.CACHE_LIMIT, 3])
@pytest.mark.parametrize("seed", range(6))
def test_the_writers_cache_of_waiting_parts_is_the_parts_table(tmp_path: Path, seed: int,
                                                               limit: int,
                                                               monkeypatch: pytest.MonkeyPatch):
    """A writer's state holds the waiting parts it claims from memory: after every committed
    batch they are the parts table row for row (or unknown, past the limit), and the view
    still equals the join."""
    monkeypatch.setattr(_merge, "CACHE_LIMIT", limit)
    if seed % 2:
        monkeypatch.setattr(_merge, "COMPACT_AT", 4)
    rng = random.Random(seed)
    con = duckdb.connect(str(tmp_path / "cache.duckdb"))
    migrate(con)
    state = facts.MergeState()
    records = make_records(rng, keys=40, repeats=False)
    rng.shuffle(records)
    listed = ", ".join(f"epoch_ns({c})" if c in ("row_start", "encoder_start", "llm_start")
                       else c for c in facts.COLUMNS)
    known = 0
    while records:
        size = rng.randint(1, 12)
        batch, records = records[:size], records[size:]
        tables = {name: pa.Table.from_pylist([r for t, r in batch if t == name], schema=schema)
                  for name, schema in _SCHEMAS.items() if any(t == name for t, _ in batch)}
        con.execute("BEGIN")
        insert_tables(con, tables, state=state)
        con.execute("COMMIT")
        stored = {(r[0], r[1]): r for r in con.execute(
            f"SELECT {listed} FROM {facts.PARTS}").fetchall()}
        if state.parts is not None:
            known += 1
            assert state.parts == stored
            assert state.waiting == len(stored)
    if limit == 3:
        assert state.parts is None or len(state.parts) <= 3
    else:
        assert known > 0
    assert _rows(con, "SELECT * FROM pipeline_rows") == _rows(con, REFERENCE)


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 200), st.data())
def test_rows_at_equals_take(count: int, data: st.DataObject) -> None:
    """facts.rows_at slices few runs of rows and takes many: either way the rows of take,
    in their order, repeats included."""
    table = pa.table({"a": list(range(count)), "b": [[str(i)] * (i % 3) for i in range(count)]})
    rows = data.draw(st.one_of(
        st.sets(st.integers(0, count - 1), max_size=count).map(sorted),
        st.lists(st.integers(0, count - 1), max_size=2 * count))) if count else []
    assert facts.rows_at(table, rows).to_pylist() == table.take(
        pa.array(rows, pa.int64())).to_pylist()
