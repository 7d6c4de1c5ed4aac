"""Derive the per-row tables (``row_records``, ``encoder_records``, ``llm_records``,
``embeddings``) and the evaluations that arrive as spans (training checks) from spans'
attributes.

One implementation serves every way spans arrive: the in-process exporter feeds it each
span's attribute dict as it converts the span (no second parse), an OTLP receiver or an
import feeds it decoded attributes, and :func:`rebuild` feeds it the stored JSON. Batched
spans (one encoder forward or one ``generate`` for N rows) are unnested here: image ``i`` of a
batch owns element ``i`` of each per-image array and elements ``i*k .. (i+1)*k - 1`` of the
flattened top-k lists (see :mod:`vlmscope.conventions`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from vlmscope import conventions as cv
from vlmscope.collectors import annotations as an
from vlmscope.collectors import facts

ROW_SCHEMA = pa.schema([
    ("trace_id", pa.string()), ("span_id", pa.string()), ("row_id", pa.string()),
    ("run_name", pa.string()), ("cohort", pa.string()), ("expected", pa.string()),
    ("objects", pa.list_(pa.string())), ("instruction", pa.string()),
    ("image_sha256", pa.string()), ("start_time", pa.timestamp("ns")),
    ("duration_ms", pa.float64()), ("status_code", pa.string()),
    ("status_message", pa.string()), ("instruction_kind", pa.string()),
    ("batch_size", pa.int32()),
])
"""Arrow schema of ``row_records``, column for column."""

ENCODER_SCHEMA = pa.schema([
    ("trace_id", pa.string()), ("span_id", pa.string()), ("record_index", pa.int32()),
    ("row_id", pa.string()), ("image_sha256", pa.string()), ("model", pa.string()),
    ("architecture", pa.string()), ("checkpoint_sha256", pa.string()),
    ("layer", pa.string()), ("embedding_dim", pa.int32()),
    ("top_k_labels", pa.list_(pa.string())), ("top_k_scores", pa.list_(pa.float64())),
    ("top_k_class_ids", pa.list_(pa.int64())), ("entropy", pa.float64()),
    ("embedding_l2_norm", pa.float64()), ("start_time", pa.timestamp("ns")),
    ("duration_ms", pa.float64()), ("status_code", pa.string()),
    ("multi_label", pa.bool_()), ("batch_size", pa.int32()),
])
"""Arrow schema of ``encoder_records``, column for column."""

LLM_SCHEMA = pa.schema([
    ("trace_id", pa.string()), ("span_id", pa.string()), ("record_index", pa.int32()),
    ("row_id", pa.string()), ("model", pa.string()), ("provider", pa.string()),
    ("instruction", pa.string()), ("output", pa.string()), ("input_tokens", pa.int64()),
    ("output_tokens", pa.int64()), ("encoder_span_id", pa.string()),
    ("start_time", pa.timestamp("ns")), ("duration_ms", pa.float64()),
    ("status_code", pa.string()), ("instruction_kind", pa.string()),
    ("batch_size", pa.int32()),
])
"""Arrow schema of ``llm_records``, column for column."""

EMBEDDING_SCHEMA = pa.schema([
    ("trace_id", pa.string()), ("span_id", pa.string()), ("record_index", pa.int32()),
    ("row_id", pa.string()), ("model", pa.string()), ("checkpoint_sha256", pa.string()),
    ("dimension", pa.int32()), ("vector", pa.list_(pa.float32())),
])
"""Arrow schema of ``embeddings``, column for column."""

EVALUATION_SCHEMA = pa.schema([
    ("run_id", pa.string()), ("row_id", pa.string()), ("trace_id", pa.string()),
    ("span_id", pa.string()), ("evaluator", pa.string()), ("score", pa.float64()),
    ("passed", pa.bool_()), ("label", pa.string()), ("explanation", pa.string()),
    ("metadata", pa.string()), ("annotator_kind", pa.string()),
])
"""Arrow schema of ``evaluations``, column for column."""

TRAINING_RUN_ID_PREFIX = "training:"
"""Run id prefix of evaluations derived from training-check spans (``training:<trace id>``)."""

KEPT_ON_REBUILD = ("embeddings", "evaluations")
"""Tables :func:`rebuild` leaves alone: their rows are not recomputed from ``spans`` alone."""

TABLES = {
    "row_records": ROW_SCHEMA,
    "encoder_records": ENCODER_SCHEMA,
    "llm_records": LLM_SCHEMA,
    "embeddings": EMBEDDING_SCHEMA,
    "evaluations": EVALUATION_SCHEMA,
}
"""Every derived table and its Arrow schema."""


_PER_ROW = ("row_records", "encoder_records", "llm_records")
# isinstance() with a tuple: ``list | tuple`` would build a union object on every call.
_SEQUENCES = (list, tuple)
_NUMBERS = (int, float)


def _at(values: Any, index: int) -> Any:
    """``values[index]`` for a per-item array; None when absent or too short."""
    if isinstance(values, _SEQUENCES) and index < len(values):
        return values[index]
    return None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _strings(value: Any) -> list[str] | None:
    if isinstance(value, _SEQUENCES):
        return [str(v) for v in value]
    return None


ARROW_POOL = pa.system_memory_pool()
"""The memory pool the converters (of spans, of OTLP requests, of records) build their
Arrow columns from. pyarrow's default pool (mimalloc) is slow to reuse memory that another
thread frees, and every batch is freed by the store's writer thread: built from the
default pool, conversion ran about 1.7 times slower while the writer worked
(``benchmarks/README.md``). pyarrow's global default is left as it is."""


def arrow_table(columns: Sequence[Sequence[Any]], schema: pa.Schema, busy: Any = None
                ) -> pa.Table:
    """An Arrow table of Python column lists, built from :data:`ARROW_POOL`. While
    ``busy.writing`` is true (the store's writer commits), the GIL is handed to the writer
    between columns (see :func:`vlmscope.collectors.convert.spans_to_batch`)."""
    arrays = [list_array(column, field.type, busy)
              for column, field in zip(columns, schema, strict=True)]
    return pa.Table.from_arrays(arrays, schema=schema)


def list_array(values: Sequence[Any], data_type: pa.DataType, busy: Any = None) -> pa.Array:
    """One column of Python values as Arrow, from :data:`ARROW_POOL`, then the GIL handed to
    the store's writer if ``busy.writing`` (see :func:`arrow_table`)."""
    array = pa.array(values, type=data_type, memory_pool=ARROW_POOL)
    if busy is not None and getattr(busy, "writing", False):
        time.sleep(0)  # releases the GIL; the waiting writer takes it
    return array


class RecordBuilder:
    """Accumulates the derived rows of a batch of spans, column by column."""

    def __init__(self) -> None:
        self.rows: dict[str, list[tuple[Any, ...]]] = {name: [] for name in TABLES}

    def _append(self, table: str, *values: Any) -> None:
        self.rows[table].append(values)

    def add_span(
        self,
        trace_id: str,
        span_id: str,
        start_ns: int,
        duration_ms: float,
        status_code: str,
        status_message: str | None,
        attributes: dict[str, Any],
        vectors: Sequence[tuple[int, Sequence[float]]] = (),
        parent_span_id: str | None = None,
    ) -> None:
        """Derive the records of one span from its attributes (and its embedding vectors,
        already taken out of the attributes)."""
        role = attributes.get(cv.VLMSCOPE_SPAN_ROLE)
        if role == cv.ROLE_TRAINING_CHECK:
            self._add_training_check(trace_id, span_id, parent_span_id, attributes)
            return
        if role == an.ROLE_EVALUATION:
            self._add_evaluation(parent_span_id, attributes)
            return
        if role == cv.ROLE_ROW:
            self._add_row(trace_id, span_id, start_ns, duration_ms, status_code,
                          status_message, attributes)
        elif role == cv.ROLE_ENCODER:
            self._add_encoder(trace_id, span_id, start_ns, duration_ms, status_code,
                              attributes, vectors)
        elif role == cv.ROLE_LLM:
            self._add_llm(trace_id, span_id, start_ns, duration_ms, status_code, attributes)

    def _add_row(self, trace_id: str, span_id: str, start_ns: int, duration_ms: float,
                 status_code: str, status_message: str | None, a: dict[str, Any]) -> None:
        row_id = a.get(cv.VLMSCOPE_ROW_ID)
        if row_id is None:
            return
        self._append(
            "row_records", trace_id, span_id, str(row_id), _text(a.get(cv.VLMSCOPE_RUN_NAME)),
            _text(a.get(cv.VLMSCOPE_COHORT)), _text(a.get(cv.VLMSCOPE_ROW_EXPECTED)),
            _strings(a.get(cv.VLMSCOPE_ROW_OBJECTS)),
            _text(a.get(cv.VLMSCOPE_ROW_INSTRUCTION)), _text(a.get(cv.VISION_IMAGE_SHA256)),
            start_ns, duration_ms, status_code, status_message,
            _text(a.get(cv.VLMSCOPE_INSTRUCTION_KIND)), _int(a.get(cv.VLMSCOPE_BATCH_SIZE)),
        )

    def _add_encoder(self, trace_id: str, span_id: str, start_ns: int, duration_ms: float,
                     status_code: str, a: dict[str, Any],
                     vectors: Sequence[tuple[int, Sequence[float]]]) -> None:
        row_ids = a.get(cv.VLMSCOPE_ROW_IDS)
        n = max(_int(a.get(cv.VISION_ENCODER_BATCH_SIZE)) or 0,
                len(row_ids) if isinstance(row_ids, _SEQUENCES) else 0, 1)
        k = _int(a.get(cv.VISION_ENCODER_TOP_K)) or 0
        labels = a.get(cv.VISION_ENCODER_TOP_K_LABELS)
        scores = a.get(cv.VISION_ENCODER_TOP_K_SCORES)
        class_ids = a.get(cv.VISION_ENCODER_TOP_K_CLASS_IDS)
        images = a.get(cv.VISION_IMAGE_SHA256)
        entropy = a.get(cv.VISION_ENCODER_ENTROPY)
        norms = a.get(cv.VISION_ENCODER_EMBEDDING_L2_NORM)
        architecture = _text(a.get(cv.VISION_ENCODER_ARCHITECTURE))
        model = _text(a.get(cv.EMBEDDING_MODEL_NAME)) or architecture
        checkpoint = _text(a.get(cv.VISION_ENCODER_CHECKPOINT_SHA256))
        layer = _text(a.get(cv.VISION_ENCODER_LAYER))
        dim = _int(a.get(cv.VISION_ENCODER_EMBEDDING_DIM))
        multi_label = _bool(a.get(cv.VISION_ENCODER_MULTI_LABEL))
        rows_in_batch = _int(a.get(cv.VLMSCOPE_BATCH_SIZE))
        for i in range(n):
            lo, hi = i * k, (i + 1) * k
            self._append(
                "encoder_records", trace_id, span_id, i, _text(_at(row_ids, i)),
                _text(_at(images, i)), model, architecture, checkpoint, layer, dim,
                [str(x) for x in labels[lo:hi]] if k and isinstance(labels, _SEQUENCES)
                else None,
                list(scores[lo:hi]) if k and isinstance(scores, _SEQUENCES) else None,
                list(class_ids[lo:hi]) if k and isinstance(class_ids, _SEQUENCES) else None,
                _at(entropy, i), _at(norms, i), start_ns, duration_ms, status_code,
                multi_label, rows_in_batch,
            )
        for index, vector in vectors:
            self._append("embeddings", trace_id, span_id, index, _text(_at(row_ids, index)),
                         model, checkpoint, len(vector), vector)

    def _add_llm(self, trace_id: str, span_id: str, start_ns: int, duration_ms: float,
                 status_code: str, a: dict[str, Any]) -> None:
        row_ids = a.get(cv.VLMSCOPE_ROW_IDS)
        outputs = a.get(cv.VLMSCOPE_LLM_OUTPUTS)
        instructions = a.get(cv.VLMSCOPE_LLM_INSTRUCTIONS)
        input_tokens = a.get(cv.VLMSCOPE_LLM_INPUT_TOKENS)
        output_tokens = a.get(cv.VLMSCOPE_LLM_OUTPUT_TOKENS)
        n = max(len(row_ids) if isinstance(row_ids, _SEQUENCES) else 0,
                len(outputs) if isinstance(outputs, _SEQUENCES) else 0, 1)
        model = _text(a.get(cv.LLM_MODEL_NAME) or a.get(cv.GEN_AI_REQUEST_MODEL))
        provider = _text(a.get(cv.GEN_AI_PROVIDER_NAME) or a.get(cv.LLM_PROVIDER))
        encoder_span = _text(a.get(cv.VISION_ENCODER_SPAN_ID))
        kind = _text(a.get(cv.VLMSCOPE_INSTRUCTION_KIND))
        rows_in_batch = _int(a.get(cv.VLMSCOPE_BATCH_SIZE))
        single = n == 1
        for i in range(n):
            self._append(
                "llm_records", trace_id, span_id, i, _text(_at(row_ids, i)), model, provider,
                _text(_at(instructions, i) if instructions is not None
                      else a.get(cv.INPUT_VALUE) if single else None),
                _text(_at(outputs, i) if outputs is not None
                      else a.get(cv.OUTPUT_VALUE) if single else None),
                _int(_at(input_tokens, i) if input_tokens is not None
                     else a.get(cv.GEN_AI_USAGE_INPUT_TOKENS) if single else None),
                _int(_at(output_tokens, i) if output_tokens is not None
                     else a.get(cv.GEN_AI_USAGE_OUTPUT_TOKENS) if single else None),
                encoder_span, start_ns, duration_ms, status_code, kind, rows_in_batch,
            )

    def _add_training_check(self, trace_id: str, span_id: str, parent_span_id: str | None,
                            a: dict[str, Any]) -> None:
        """A training check's verdict is an evaluation of the training run it judged (its
        parent span); the run id is the training run's trace."""
        name = a.get(cv.VLMSCOPE_TRAINING_CHECK_NAME)
        if name is None:
            return
        score = a.get(cv.VLMSCOPE_TRAINING_CHECK_SCORE)
        passed = a.get(cv.VLMSCOPE_TRAINING_CHECK_PASSED)
        self._append(
            "evaluations", f"{TRAINING_RUN_ID_PREFIX}{trace_id}", None, trace_id,
            parent_span_id or span_id,
            str(name), float(score) if isinstance(score, _NUMBERS) else None,
            passed if isinstance(passed, bool) else None,
            _text(a.get(cv.VLMSCOPE_TRAINING_CHECK_LABEL)),
            _text(a.get(cv.VLMSCOPE_TRAINING_CHECK_EXPLANATION)),
            _text(a.get(cv.METADATA)),
            _text(a.get(cv.VLMSCOPE_TRAINING_CHECK_ANNOTATOR_KIND)) or "CODE",
        )

    def _add_evaluation(self, judged_span_id: str | None, a: dict[str, Any]) -> None:
        """An evaluation span (see :mod:`vlmscope.collectors.annotations`) is one
        evaluation of its parent span."""
        run_id, name = a.get(an.EVALUATION_RUN_ID), a.get(an.ANNOTATION_NAME)
        if run_id is None or name is None:
            return
        score = a.get(an.ANNOTATION_SCORE)
        passed = a.get(an.EVALUATION_PASSED)
        self._append(
            "evaluations", str(run_id), _text(a.get(an.EVALUATION_ROW_ID)),
            _text(a.get(an.EVALUATION_TRACE_ID)), judged_span_id, str(name),
            float(score) if isinstance(score, _NUMBERS) and not isinstance(score, bool)
            else None,
            passed if isinstance(passed, bool) else None,
            _text(a.get(an.ANNOTATION_LABEL)), _text(a.get(an.ANNOTATION_EXPLANATION)),
            _text(a.get(an.ANNOTATION_METADATA)),
            _text(a.get(an.ANNOTATION_ANNOTATOR_KIND)) or "CODE",
        )

    def tables(self) -> dict[str, pa.Table]:
        """The derived rows as Arrow tables (tables without rows are left out), and the
        batch's pipeline-row parts assembled from them under ``facts.BATCH_KEY`` (a change
        to the record tables must drop that entry: :func:`insert_tables` then reassembles)."""
        out = {}
        columns: dict[str, dict[str, list]] = {}
        for name, schema in TABLES.items():
            rows = self.rows[name]
            if rows:
                values = list(zip(*rows, strict=True))
                if name in _PER_ROW:
                    columns[name] = dict(zip(schema.names, values, strict=True))
                out[name] = arrow_table(values, schema)
        if columns:
            out[facts.BATCH_KEY] = facts.to_arrow(facts.assemble(
                *(columns.get(name, {}) for name in _PER_ROW)))
        return out


def insert_tables(con: duckdb.DuckDBPyConnection, tables: dict[str, pa.Table], *,
                  merge: bool = True, state: facts.MergeState | None = None,
                  first: str | None = None, last: str | None = None,
                  plain_appends: bool = False) -> list[tuple] | None:
    """Append derived Arrow tables to their store tables (one insert each) and, unless
    ``merge`` is false, merge the batch's records into the materialised ``pipeline_rows``
    (:func:`vlmscope.collectors.facts.plan_merge`, with the writer's ``state`` when it
    keeps one), in the caller's transaction. The batch's parts are those under
    ``facts.BATCH_KEY`` when given, else DuckDB assembles them from the batch's records
    (:func:`vlmscope.collectors.facts.assemble_batch`). ``first`` and ``last``, statements,
    run before and after the others; the rows ``last`` returns are returned. With
    ``plain_appends`` the appends run with DuckDB's optimiser off (it costs about 0.2 ms a
    statement and does nothing for them); a script that fails between turning it off and on
    leaves it off, since an aborted transaction takes no statement but ROLLBACK, so only a
    caller that drops the connection after a failure (the store writer) may ask for it.

    The statements go to DuckDB as one script: each call into DuckDB has to win the GIL back
    when it returns, which takes up to Python's switch interval (5 ms) while the application
    runs Python, so a writer that made one call per statement spent most of its time
    waiting."""
    tables = dict(tables)
    parts = tables.pop(facts.BATCH_KEY, None)
    views: dict[str, str] = {}
    plan = None
    try:
        plain = [first] if first else []
        for name, table in tables.items():
            view = views[name] = f"_vlmscope_{name}_batch"
            con.register(view, table)
            plain.append(f"INSERT INTO {name} SELECT * FROM {view}")
        statements = []
        if merge and any(name in tables for name in _PER_ROW):
            if parts is None:
                parts = facts.assemble_batch(
                    con, {name: views[name] for name in _PER_ROW if name in views})
            plan = facts.plan_merge(con, parts, state)
            plain += plan.plain
            statements += plan.statements
        if plain and plain_appends:
            statements += ["PRAGMA disable_optimizer", *plain, "PRAGMA enable_optimizer"]
        else:
            statements += plain
        if last:
            statements.append(last)
        result = con.execute(";\n".join(statements)).fetchall() if statements else None
    except BaseException:
        if plan is not None:
            plan.release()
        raise
    finally:
        for view in views.values():
            con.unregister(view)
    if plan is not None:
        plan.finish()
    return result if last else None


def rebuild(con: duckdb.DuckDBPyConnection, chunk_rows: int = 50_000) -> int:
    """Recompute the derived tables from ``spans`` (e.g. after an import); returns the
    number of spans read. Embeddings are kept: they live only in their own table."""
    con.execute("BEGIN TRANSACTION")
    try:
        for table in ("row_records", "encoder_records", "llm_records"):
            con.execute(f"DELETE FROM {table}")
        reader = con.sql(
            "SELECT trace_id, span_id, epoch_ns(start_time), duration_ms, status_code, "
            "status_message, attributes, parent_span_id FROM spans"
        ).to_arrow_reader(chunk_rows)
        builders = []
        seen = 0
        for batch in reader:
            builder = RecordBuilder()
            for trace_id, span_id, start, duration, status, message, attrs, parent in zip(
                *(batch.column(i).to_pylist() for i in range(8)), strict=True
            ):
                builder.add_span(trace_id, span_id, start, duration, status, message,
                                 orjson.loads(attrs) if attrs else {}, parent_span_id=parent)
            seen += batch.num_rows
            builders.append(builder)
        for builder in builders:
            tables = builder.tables()
            for kept in KEPT_ON_REBUILD:
                tables.pop(kept, None)
            insert_tables(con, tables, merge=False)
        facts.refresh(con)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return seen
