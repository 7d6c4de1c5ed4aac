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

from collections.abc import Sequence
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from vlmscope import conventions as cv
from vlmscope.collectors import facts, spec
from vlmscope.collectors.handover import yield_to_writer

ROW_SCHEMA = spec.arrow_schema(spec.ROW_RECORDS)
"""Arrow schema of ``row_records``, column for column."""

ENCODER_SCHEMA = spec.arrow_schema(spec.ENCODER_RECORDS)
"""Arrow schema of ``encoder_records``, column for column."""

LLM_SCHEMA = spec.arrow_schema(spec.LLM_RECORDS)
"""Arrow schema of ``llm_records``, column for column."""

EMBEDDING_SCHEMA = spec.arrow_schema(spec.EMBEDDINGS)
"""Arrow schema of ``embeddings``, column for column."""

EVALUATION_SCHEMA = spec.arrow_schema(spec.EVALUATIONS)
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


PER_ROW_TABLES = ("row_records", "encoder_records", "llm_records")
"""The derived tables of per-row records, merged into the pipeline rows."""

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


def _sources(column: str) -> tuple[spec.Source, ...]:
    return spec.LLM_RECORDS.column(column).sources


# The LLM record's key lists, from the spec. vlmscope's own LLM spans carry the first two
# names of a model or provider list, their per-row lists, and the usage and text values.
_MODEL = _sources("model")
_PROVIDER = _sources("provider")
_RESPONSE_MODEL = _sources("response_model")
_INSTRUCTION = _sources("instruction")
_OUTPUT = _sources("output")
_INPUT_TOKENS = _sources("input_tokens")
_OUTPUT_TOKENS = _sources("output_tokens")
_MIME_TYPES = {cv.INPUT_VALUE: cv.INPUT_MIME_TYPE, cv.OUTPUT_VALUE: cv.OUTPUT_MIME_TYPE}
_USER, _ASSISTANT = "user", "assistant"


def _first(a: dict[str, Any], sources: Sequence[spec.Source]) -> Any:
    """``a.get(x) or a.get(y) or ...`` over the value-layout sources."""
    for source in sources:
        if source.layout == spec.VALUE:
            value = a.get(source.attribute)
            if value:
                return value
    return None


def _indexed_messages(a: dict[str, Any], prefix: str, role_key: str, content_key: str
                      ) -> list[tuple[Any, str | None]]:
    """(role, text) of messages laid out as ``prefix.N.<role_key>`` / ``prefix.N.<content_key>``
    (or OpenInference's ``prefix.N.message.contents.M.message_content.text`` parts), in N
    order."""
    found: dict[int, dict[str, Any]] = {}
    start = prefix + "."
    parts_prefix = cv.MESSAGE_CONTENTS + "."
    text_suffix = "." + cv.MESSAGE_CONTENT_TEXT
    for key, value in a.items():
        if not key.startswith(start):
            continue
        index, _, field = key[len(start):].partition(".")
        if not index.isdigit():
            continue
        entry = found.setdefault(int(index), {})
        if field == role_key:
            entry["role"] = value
        elif field == content_key:
            entry["text"] = value
        elif field.startswith(parts_prefix) and field.endswith(text_suffix):
            part = field[len(parts_prefix):-len(text_suffix)]
            if part.isdigit():
                entry.setdefault("parts", {})[int(part)] = value
    messages = []
    for index in sorted(found):
        entry = found[index]
        text = entry.get("text")
        if text is None and "parts" in entry:
            text = "".join(str(entry["parts"][i]) for i in sorted(entry["parts"]))
        messages.append((entry.get("role"), _text(text)))
    return messages


def _json_messages(value: Any) -> list[tuple[Any, str | None]]:
    """(role, text) of GenAI messages given as JSON text (text parts joined)."""
    if not isinstance(value, str):
        return []
    try:
        messages = orjson.loads(value)
    except orjson.JSONDecodeError:
        return []
    out = []
    for message in messages if isinstance(messages, list) else []:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        parts = message.get("parts")
        if isinstance(parts, list):
            texts = [p.get("content") for p in parts if isinstance(p, dict)
                     and p.get("type") == "text" and isinstance(p.get("content"), str)]
            content = "".join(texts) if texts else content
        out.append((message.get("role"), content if isinstance(content, str) else None))
    return out


def _message_text(a: dict[str, Any], sources: Sequence[spec.Source], role: str,
                  last: bool) -> str | None:
    """The text of the last (``last``) or first message with ``role`` (else of the last or
    first message when none has a role), from the first source that has any messages."""
    for source in sources:
        if source.layout == spec.INDEXED_MESSAGES:
            messages = _indexed_messages(a, source.attribute, cv.MESSAGE_ROLE,
                                         cv.MESSAGE_CONTENT)
        elif source.layout == spec.INDEXED_PROMPTS:
            messages = _indexed_messages(a, source.attribute, "role", "content")
        elif source.layout == spec.JSON_MESSAGES:
            messages = _json_messages(a.get(source.attribute))
        elif source.layout == spec.TEXT_VALUE:
            value = a.get(source.attribute)
            mime = a.get(_MIME_TYPES.get(source.attribute, ""))
            if value is not None and mime != cv.MIME_JSON:
                return _text(value)
            continue
        else:
            continue
        if not messages:
            continue
        ordered = messages[::-1] if last else messages
        for message_role, text in ordered:
            if message_role == role and text is not None:
                return text
        if all(message_role is None for message_role, _ in messages):
            return ordered[0][1]
    return None


def is_llm_call(a: dict[str, Any]) -> bool:
    """Whether a span without a vlmscope role is an LLM call (:data:`spec.LLM_SPAN_MARKERS`)."""
    if a.get(cv.OPENINFERENCE_SPAN_KIND) == cv.SPAN_KIND_LLM:
        return True
    operation = a.get(cv.GEN_AI_OPERATION_NAME)
    if operation is not None:
        return operation in spec.LLM_OPERATIONS
    return (cv.GEN_AI_PROVIDER_NAME in a or cv.GEN_AI_SYSTEM in a) and bool(_first(a, _MODEL))


def llm_answer(a: dict[str, Any]) -> str | None:
    """The answer an OpenInference or OTel GenAI LLM span recorded (its first assistant
    message's text), read as ``llm_records.output`` reads it; None when it recorded none."""
    return _message_text(a, _OUTPUT, _ASSISTANT, last=False)


def foreign_llm_rows(trace_id: str, span_id: str, start_ns: int, duration_ms: float,
                     status_code: str, a: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The ``llm_records`` rows of a span without a vlmscope role that an OpenInference or
    OTel GenAI instrumentor wrote (none when it is not an LLM call), read by the spec's key
    lists: the instruction is the last user message's text, the answer the first assistant
    message's. One row per row id the span carries (vlmscope's processor gives a span started
    inside ``trace_row`` its row id), each with the call's values."""
    if not is_llm_call(a):
        return []
    row_ids = a.get(cv.VLMSCOPE_ROW_IDS)
    ids = [_text(r) for r in row_ids] if isinstance(row_ids, _SEQUENCES) and row_ids \
        else [None]
    values = (
        _text(_first(a, _MODEL)), _text(_first(a, _PROVIDER)),
        _message_text(a, _INSTRUCTION, _USER, last=True),
        llm_answer(a), _int(_first(a, _INPUT_TOKENS)), _int(_first(a, _OUTPUT_TOKENS)),
        _text(a.get(cv.VISION_ENCODER_SPAN_ID)), start_ns, duration_ms, status_code,
        _text(a.get(cv.VLMSCOPE_INSTRUCTION_KIND)), _int(a.get(cv.VLMSCOPE_BATCH_SIZE)),
        _text(_first(a, _RESPONSE_MODEL)),
    )
    return [(trace_id, span_id, i, row_id, *values) for i, row_id in enumerate(ids)]


ARROW_POOL = pa.system_memory_pool()
"""The memory pool the converters (of spans, of OTLP requests, of records) build their
Arrow columns from. pyarrow's default pool (mimalloc) is slow to reuse memory that another
thread frees, and every batch is freed by the store's writer thread: built from the
default pool, conversion ran slower while the writer worked (``benchmarks/README.md``).
pyarrow's global default is left as it is."""


def arrow_table(columns: Sequence[Sequence[Any]], schema: pa.Schema, busy: Any = None
                ) -> pa.Table:
    """An Arrow table of Python column lists, built from :data:`ARROW_POOL`, handing the GIL
    to the writer between columns by the rule of :mod:`vlmscope.collectors.handover`."""
    arrays = [list_array(column, field.type, busy)
              for column, field in zip(columns, schema, strict=True)]
    return pa.Table.from_arrays(arrays, schema=schema)


def list_array(values: Sequence[Any], data_type: pa.DataType, busy: Any = None) -> pa.Array:
    """One column of Python values as Arrow, from :data:`ARROW_POOL`, then a yield point of
    the GIL hand-over (:func:`vlmscope.collectors.handover.yield_to_writer`)."""
    array = pa.array(values, type=data_type, memory_pool=ARROW_POOL)
    yield_to_writer(busy)
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
        if role == cv.ROLE_EVALUATION:
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
        elif role is None:
            self.rows["llm_records"].extend(foreign_llm_rows(
                trace_id, span_id, start_ns, duration_ms, status_code, attributes))

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
        model = _text(a.get(_MODEL[0].attribute) or a.get(_MODEL[1].attribute))
        provider = _text(a.get(_PROVIDER[0].attribute) or a.get(_PROVIDER[1].attribute))
        response_model = _text(a.get(_RESPONSE_MODEL[0].attribute)
                               or a.get(_RESPONSE_MODEL[1].attribute))
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
                response_model,
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
            _text(a.get(cv.VLMSCOPE_TRAINING_CHECK_ANNOTATOR_KIND)) or cv.ANNOTATOR_KIND_CODE,
        )

    def _add_evaluation(self, judged_span_id: str | None, a: dict[str, Any]) -> None:
        """An evaluation span (see :mod:`vlmscope.collectors.annotations`) is one
        evaluation of its parent span."""
        run_id, name = a.get(cv.VLMSCOPE_EVALUATION_RUN_ID), a.get(cv.ANNOTATION_NAME)
        if run_id is None or name is None:
            return
        score = a.get(cv.ANNOTATION_SCORE, a.get(cv.LEGACY_ANNOTATION_SCORE))
        passed = a.get(cv.VLMSCOPE_EVALUATION_PASSED)
        self._append(
            "evaluations", str(run_id), _text(a.get(cv.VLMSCOPE_EVALUATION_ROW_ID)),
            _text(a.get(cv.VLMSCOPE_EVALUATION_TRACE_ID)), judged_span_id, str(name),
            float(score) if isinstance(score, _NUMBERS) and not isinstance(score, bool)
            else None,
            passed if isinstance(passed, bool) else None,
            _text(a.get(cv.ANNOTATION_LABEL, a.get(cv.LEGACY_ANNOTATION_LABEL))),
            _text(a.get(cv.ANNOTATION_EXPLANATION, a.get(cv.LEGACY_ANNOTATION_EXPLANATION))),
            _text(a.get(cv.ANNOTATION_METADATA)),
            _text(a.get(cv.ANNOTATION_ANNOTATOR_KIND)) or cv.ANNOTATOR_KIND_CODE,
        )

    def tables(self) -> dict[str, pa.Table]:
        """The derived rows as Arrow tables (tables without rows are left out)."""
        out = {}
        for name, schema in TABLES.items():
            rows = self.rows[name]
            if rows:
                out[name] = arrow_table(list(zip(*rows, strict=True)), schema)
        return out


def insert_tables(con: duckdb.DuckDBPyConnection, tables: dict[str, pa.Table], *,
                  merge: bool = True, state: facts.MergeState | None = None,
                  first: str | None = None, last: str | None = None,
                  plain_appends: bool = False) -> list[tuple] | None:
    """Append derived Arrow tables to their store tables (one insert each) and, unless
    ``merge`` is false, merge the batch's records into the materialised ``pipeline_rows``
    (:func:`vlmscope.collectors.facts.plan_merge`, with the writer's ``state`` when it
    keeps one), in the caller's transaction. DuckDB assembles the batch's parts from its
    records (:func:`vlmscope.collectors.facts.assemble_batch`). ``first`` and ``last``, statements,
    run before and after the others; the rows ``last`` returns are returned. With
    ``plain_appends`` the appends run with DuckDB's optimiser off (it costs time on every
    statement and does nothing for them); a script that fails between turning it off and on
    leaves it off, since an aborted transaction takes no statement but ROLLBACK, so only a
    caller that drops the connection after a failure (the store writer) may ask for it.

    The statements go to DuckDB as one script: each call into DuckDB has to win the GIL back
    when it returns, which takes up to the interpreter's switch interval while the
    application runs Python (:mod:`vlmscope.collectors.handover`), so one call is cheaper
    than one a statement."""
    views: dict[str, str] = {}
    plan = None
    try:
        plain = [first] if first else []
        for name, table in tables.items():
            view = views[name] = f"_vlmscope_{name}_batch"
            con.register(view, table)
            plain.append(f"INSERT INTO {name} SELECT * FROM {view}")
        statements = []
        if merge and any(name in tables for name in PER_ROW_TABLES):
            parts = facts.assemble_batch(
                con, {name: views[name] for name in PER_ROW_TABLES if name in views},
                {name: tables[name] for name in PER_ROW_TABLES if name in tables})
            plan = facts.plan_merge(con, parts, state)
            plain += plan.plain
            statements += plan.statements
        if plain and plain_appends:
            statements += ["PRAGMA disable_optimizer", *plain, "PRAGMA enable_optimizer"]
        else:
            statements += plain
        if plan is not None:
            statements += plan.repairs
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
