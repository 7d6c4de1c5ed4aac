"""The spec of the store: every derived table and ``pipeline_rows``, column by column.

For each column: its name, its DuckDB type, what it means, and the span attributes it is
read from, in priority order (each :class:`Source` names the convention it comes from). The
Arrow schemas of the converters (:mod:`~vlmscope.collectors.normalize`,
:mod:`~vlmscope.collectors.convert`), the materialised ``pipeline_rows`` tables and view
(:mod:`~vlmscope.collectors.facts`) and the evaluators' row schema are generated from it;
the SQL a store was created with (frozen migrations) and the native converter's column
counts are checked against it by :func:`out_of_step`, which names every place that
disagrees. Adding a column is an edit here plus a migration.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from vlmscope import conventions as cv

VLMSCOPE = "vlmscope"
"""Origin of attributes vlmscope itself writes."""

OPENINFERENCE = "OpenInference"
"""Origin of OpenInference attributes (Arize Phoenix, traceAI)."""

GENAI = "OTel GenAI"
"""Origin of the current OpenTelemetry GenAI semantic conventions."""

GENAI_DEPRECATED = "OTel GenAI (deprecated)"
"""Origin of GenAI names the conventions dropped but popular instrumentors (OpenLLMetry's
``opentelemetry-instrumentation-openai``, for one) still emit."""

SPAN = "span"
"""Origin of values that are the span's own fields (ids, times, status), not attributes."""


VALUE = "value"
"""Layout of a source: the attribute's value as it is."""

PER_ROW = "per row"
"""Layout of a source: a list with one value per row id of the span (vlmscope's batches)."""

TEXT_VALUE = "text value"
"""Layout of a source: the value, unless the span's matching ``*.mime_type`` says JSON (an
instrumentor's raw request or response body, not a text)."""

INDEXED_MESSAGES = "indexed messages"
"""Layout of a source: OpenInference messages, ``PREFIX.N.message.role`` and
``PREFIX.N.message.content`` (or ``PREFIX.N.message.contents.M.message_content.text``)."""

JSON_MESSAGES = "JSON messages"
"""Layout of a source: GenAI messages as JSON text, ``[{"role": ..., "parts": [{"type":
"text", "content": ...}]}]``."""

INDEXED_PROMPTS = "indexed prompts"
"""Layout of a source: deprecated GenAI messages, ``PREFIX.N.role`` and ``PREFIX.N.content``."""


@dataclass(frozen=True)
class Source:
    """A span attribute a column is read from, the convention that names it, and how the
    value is laid out (:data:`VALUE` unless said)."""

    attribute: str
    origin: str
    layout: str = VALUE


@dataclass(frozen=True)
class Column:
    """One column: name, DuckDB type, meaning, and its sources in priority order."""

    name: str
    type: str
    meaning: str
    sources: tuple[Source, ...] = ()
    not_null: bool = False


@dataclass(frozen=True)
class Table:
    """A derived table (or the ``pipeline_rows`` view) and its columns, in order."""

    name: str
    meaning: str
    columns: tuple[Column, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """The column names, in order."""
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        """The column called ``name``."""
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"{self.name} has no column {name}")


def _ours(*attributes: str) -> tuple[Source, ...]:
    return tuple(Source(a, VLMSCOPE) for a in attributes)


def _span(field: str) -> tuple[Source, ...]:
    return (Source(field, SPAN),)


_TRACE_ID = Column("trace_id", "VARCHAR", "The trace, 32 hex digits.", _span("trace_id"),
                   not_null=True)
_SPAN_ID = Column("span_id", "VARCHAR", "The span the record comes from, 16 hex digits.",
                  _span("span_id"), not_null=True)
_RECORD_INDEX = Column("record_index", "INTEGER",
                       "Which of the span's rows this is (0 for a single-row call).",
                       not_null=True)
_ROW_ID_OF_CALL = Column("row_id", "VARCHAR", "The pipeline row served (NULL: not known).",
                         _ours(cv.VLMSCOPE_ROW_IDS))
_START = Column("start_time", "TIMESTAMP_NS", "When the span started (UTC).",
                _span("start_time"))
_DURATION = Column("duration_ms", "DOUBLE", "The span's duration in milliseconds.",
                   _span("duration_ms"))
_STATUS = Column("status_code", "VARCHAR", "OK, ERROR or UNSET.", _span("status_code"))
_BATCH_SIZE = Column("batch_size", "INTEGER",
                     "Rows served together by a trace_batch (NULL outside one).",
                     _ours(cv.VLMSCOPE_BATCH_SIZE))

SPANS = Table("spans", "Every span, losslessly (attributes, events, links as JSON text).", (
    _TRACE_ID,
    Column("span_id", "VARCHAR", "The span, 16 hex digits.", _span("span_id"),
           not_null=True),
    Column("parent_span_id", "VARCHAR", "The parent span (NULL for a root)."),
    Column("name", "VARCHAR", "The span's name.", not_null=True),
    Column("kind", "VARCHAR", "INTERNAL, CLIENT, SERVER, PRODUCER or CONSUMER.",
           not_null=True),
    Column("start_time", "TIMESTAMP_NS", "Start (UTC).", not_null=True),
    Column("end_time", "TIMESTAMP_NS", "End (UTC).", not_null=True),
    Column("duration_ms", "DOUBLE", "End minus start, in milliseconds.", not_null=True),
    Column("status_code", "VARCHAR", "OK, ERROR or UNSET.", not_null=True),
    Column("status_message", "VARCHAR", "The status description."),
    Column("service_name", "VARCHAR", "The resource's service.name."),
    Column("scope_name", "VARCHAR", "The instrumentation scope."),
    Column("scope_version", "VARCHAR", "The instrumentation scope's version."),
    Column("trace_state", "VARCHAR", "W3C trace state header."),
    Column("trace_flags", "INTEGER", "W3C trace flags."),
    Column("attributes", "VARCHAR", "Attributes as JSON text (embedding vectors moved out)."),
    Column("events", "VARCHAR", "Events as JSON text."),
    Column("links", "VARCHAR", "Links as JSON text."),
    Column("resource", "VARCHAR", "The resource as JSON text."),
    Column("dropped_attributes", "INTEGER", "Attributes the SDK dropped."),
    Column("dropped_events", "INTEGER", "Events the SDK dropped."),
    Column("dropped_links", "INTEGER", "Links the SDK dropped."),
))

ROW_RECORDS = Table("row_records", "One row per row span.", (
    _TRACE_ID, _SPAN_ID,
    Column("row_id", "VARCHAR", "The pipeline row's id.", _ours(cv.VLMSCOPE_ROW_ID),
           not_null=True),
    Column("run_name", "VARCHAR", "The named run.", _ours(cv.VLMSCOPE_RUN_NAME)),
    Column("cohort", "VARCHAR", "The cohort (data slice).", _ours(cv.VLMSCOPE_COHORT)),
    Column("expected", "VARCHAR", "The expected answer.", _ours(cv.VLMSCOPE_ROW_EXPECTED)),
    Column("objects", "VARCHAR[]", "The objects really in the image.",
           _ours(cv.VLMSCOPE_ROW_OBJECTS)),
    Column("instruction", "VARCHAR", "The instruction given for the row.",
           _ours(cv.VLMSCOPE_ROW_INSTRUCTION)),
    Column("image_sha256", "VARCHAR", "SHA-256 of the image.", _ours(cv.VISION_IMAGE_SHA256)),
    _START, _DURATION, _STATUS,
    Column("status_message", "VARCHAR", "The row's error, when it failed.",
           _span("status_message")),
    Column("instruction_kind", "VARCHAR", "What the instruction asks for.",
           _ours(cv.VLMSCOPE_INSTRUCTION_KIND)),
    _BATCH_SIZE,
))

ENCODER_RECORDS = Table("encoder_records", "One row per image of an encoder call.", (
    _TRACE_ID, _SPAN_ID, _RECORD_INDEX, _ROW_ID_OF_CALL,
    Column("image_sha256", "VARCHAR", "SHA-256 of the image.", _ours(cv.VISION_IMAGE_SHA256)),
    Column("model", "VARCHAR", "The encoder's name (else its architecture).",
           (Source(cv.EMBEDDING_MODEL_NAME, OPENINFERENCE),
            Source(cv.VISION_ENCODER_ARCHITECTURE, VLMSCOPE))),
    Column("architecture", "VARCHAR", "The architecture (resnet18, ...).",
           _ours(cv.VISION_ENCODER_ARCHITECTURE)),
    Column("checkpoint_sha256", "VARCHAR", "SHA-256 of the weights.",
           _ours(cv.VISION_ENCODER_CHECKPOINT_SHA256)),
    Column("layer", "VARCHAR", "The hooked feature layer.", _ours(cv.VISION_ENCODER_LAYER)),
    Column("embedding_dim", "INTEGER", "Dimension of the feature vector.",
           _ours(cv.VISION_ENCODER_EMBEDDING_DIM)),
    Column("top_k_labels", "VARCHAR[]", "Top-k labels, best first.",
           _ours(cv.VISION_ENCODER_TOP_K_LABELS)),
    Column("top_k_scores", "DOUBLE[]", "Top-k scores in [0, 1].",
           _ours(cv.VISION_ENCODER_TOP_K_SCORES)),
    Column("top_k_class_ids", "BIGINT[]", "Top-k class indices.",
           _ours(cv.VISION_ENCODER_TOP_K_CLASS_IDS)),
    Column("entropy", "DOUBLE", "Entropy of the class distribution, in nats.",
           _ours(cv.VISION_ENCODER_ENTROPY)),
    Column("embedding_l2_norm", "DOUBLE", "L2 norm of the feature vector.",
           _ours(cv.VISION_ENCODER_EMBEDDING_L2_NORM)),
    _START, _DURATION, _STATUS,
    Column("multi_label", "BOOLEAN", "True when the top-k scores are independent sigmoids.",
           _ours(cv.VISION_ENCODER_MULTI_LABEL)),
    _BATCH_SIZE,
))

LLM_RECORDS = Table("llm_records", "One row per output of a language-head call.", (
    _TRACE_ID, _SPAN_ID, _RECORD_INDEX, _ROW_ID_OF_CALL,
    Column("model", "VARCHAR", "The model asked for (else the one that answered).",
           (Source(cv.GEN_AI_REQUEST_MODEL, GENAI), Source(cv.LLM_MODEL_NAME, OPENINFERENCE),
            Source(cv.GEN_AI_RESPONSE_MODEL, GENAI))),
    Column("provider", "VARCHAR", "Who serves the model.",
           (Source(cv.GEN_AI_PROVIDER_NAME, GENAI), Source(cv.LLM_PROVIDER, OPENINFERENCE),
            Source(cv.GEN_AI_SYSTEM, GENAI_DEPRECATED), Source(cv.LLM_SYSTEM, OPENINFERENCE))),
    Column("instruction", "VARCHAR", "The instruction: the last user message's text.",
           (Source(cv.VLMSCOPE_LLM_INSTRUCTIONS, VLMSCOPE, PER_ROW),
            Source(cv.LLM_INPUT_MESSAGES, OPENINFERENCE, INDEXED_MESSAGES),
            Source(cv.GEN_AI_INPUT_MESSAGES, GENAI, JSON_MESSAGES),
            Source(cv.GEN_AI_PROMPT, GENAI_DEPRECATED, INDEXED_PROMPTS),
            Source(cv.INPUT_VALUE, OPENINFERENCE, TEXT_VALUE))),
    Column("output", "VARCHAR", "The answer: the (first) assistant message's text.",
           (Source(cv.VLMSCOPE_LLM_OUTPUTS, VLMSCOPE, PER_ROW),
            Source(cv.LLM_OUTPUT_MESSAGES, OPENINFERENCE, INDEXED_MESSAGES),
            Source(cv.GEN_AI_OUTPUT_MESSAGES, GENAI, JSON_MESSAGES),
            Source(cv.GEN_AI_COMPLETION, GENAI_DEPRECATED, INDEXED_PROMPTS),
            Source(cv.OUTPUT_VALUE, OPENINFERENCE, TEXT_VALUE))),
    Column("input_tokens", "BIGINT", "Prompt tokens.",
           (Source(cv.VLMSCOPE_LLM_INPUT_TOKENS, VLMSCOPE, PER_ROW),
            Source(cv.GEN_AI_USAGE_INPUT_TOKENS, GENAI),
            Source(cv.LLM_TOKEN_COUNT_PROMPT, OPENINFERENCE),
            Source(cv.GEN_AI_USAGE_PROMPT_TOKENS, GENAI_DEPRECATED))),
    Column("output_tokens", "BIGINT", "Generated tokens.",
           (Source(cv.VLMSCOPE_LLM_OUTPUT_TOKENS, VLMSCOPE, PER_ROW),
            Source(cv.GEN_AI_USAGE_OUTPUT_TOKENS, GENAI),
            Source(cv.LLM_TOKEN_COUNT_COMPLETION, OPENINFERENCE),
            Source(cv.GEN_AI_USAGE_COMPLETION_TOKENS, GENAI_DEPRECATED))),
    Column("encoder_span_id", "VARCHAR", "The encoder span whose reading the call used.",
           _ours(cv.VISION_ENCODER_SPAN_ID)),
    _START, _DURATION, _STATUS,
    Column("instruction_kind", "VARCHAR", "What the instruction asks for.",
           _ours(cv.VLMSCOPE_INSTRUCTION_KIND)),
    _BATCH_SIZE,
    Column("response_model", "VARCHAR", "The model that answered, as the provider named it.",
           (Source(cv.GEN_AI_RESPONSE_MODEL, GENAI), Source(cv.LLM_MODEL_NAME, OPENINFERENCE))),
))

LLM_SPAN_MARKERS: tuple[Source, ...] = (
    Source(cv.OPENINFERENCE_SPAN_KIND, OPENINFERENCE),
    Source(cv.GEN_AI_OPERATION_NAME, GENAI),
    Source(cv.GEN_AI_PROVIDER_NAME, GENAI),
    Source(cv.GEN_AI_SYSTEM, GENAI_DEPRECATED),
)
"""What makes a span without a vlmscope role an LLM call: ``openinference.span.kind`` is
``LLM``, or ``gen_ai.operation.name`` is an inference operation (chat, text_completion,
generate_content), or a GenAI provider (current or deprecated name) is given with a model."""

LLM_OPERATIONS = (cv.GEN_AI_OPERATION_CHAT, cv.GEN_AI_OPERATION_TEXT_COMPLETION,
                  cv.GEN_AI_OPERATION_GENERATE_CONTENT)
"""The GenAI operation names of an inference call."""

EMBEDDINGS = Table("embeddings", "One row per image whose feature vector was captured.", (
    _TRACE_ID, _SPAN_ID, _RECORD_INDEX, _ROW_ID_OF_CALL,
    Column("model", "VARCHAR", "The encoder's name.", ENCODER_RECORDS.column("model").sources),
    Column("checkpoint_sha256", "VARCHAR", "SHA-256 of the weights.",
           _ours(cv.VISION_ENCODER_CHECKPOINT_SHA256)),
    Column("dimension", "INTEGER", "The vector's length.", not_null=True),
    Column("vector", "FLOAT[]", "The feature vector.",
           _ours(cv.EMBEDDING_EMBEDDINGS_PREFIX + ".N" + cv.EMBEDDING_VECTOR_SUFFIX),
           not_null=True),
))

EVALUATIONS = Table("evaluations", "One row per judged row and evaluator.", (
    Column("run_id", "VARCHAR", "The evaluation run.",
           (Source(cv.VLMSCOPE_EVALUATION_RUN_ID, VLMSCOPE),), not_null=True),
    Column("row_id", "VARCHAR", "The judged pipeline row.", _ours(cv.VLMSCOPE_EVALUATION_ROW_ID)),
    Column("trace_id", "VARCHAR", "The judged row's trace.",
           _ours(cv.VLMSCOPE_EVALUATION_TRACE_ID)),
    Column("span_id", "VARCHAR", "The judged span.", _span("parent_span_id")),
    Column("evaluator", "VARCHAR", "The evaluator's name.",
           (Source(cv.ANNOTATION_NAME, OPENINFERENCE),), not_null=True),
    Column("score", "DOUBLE", "Score in [0, 1].",
           (Source(cv.ANNOTATION_SCORE, OPENINFERENCE),
            Source(cv.LEGACY_ANNOTATION_SCORE, VLMSCOPE))),
    Column("passed", "BOOLEAN", "Whether the row passes.", _ours(cv.VLMSCOPE_EVALUATION_PASSED)),
    Column("label", "VARCHAR", "A short category.",
           (Source(cv.ANNOTATION_LABEL, OPENINFERENCE),
            Source(cv.LEGACY_ANNOTATION_LABEL, VLMSCOPE))),
    Column("explanation", "VARCHAR", "Why, in a sentence.",
           (Source(cv.ANNOTATION_EXPLANATION, OPENINFERENCE),
            Source(cv.LEGACY_ANNOTATION_EXPLANATION, VLMSCOPE))),
    Column("metadata", "VARCHAR", "What was compared, as JSON text.",
           (Source(cv.ANNOTATION_METADATA, OPENINFERENCE),)),
    Column("annotator_kind", "VARCHAR", "CODE, LLM or HUMAN.",
           (Source(cv.ANNOTATION_ANNOTATOR_KIND, OPENINFERENCE),), not_null=True),
))

DERIVED: tuple[Table, ...] = (ROW_RECORDS, ENCODER_RECORDS, LLM_RECORDS, EMBEDDINGS,
                              EVALUATIONS)
"""The tables derived from spans, in the order the converters build them."""


@dataclass(frozen=True)
class Part:
    """The columns a record kind gives a materialised pipeline row: (fact column, record
    column) pairs; the first three order the records ("latest wins"), "0" is a literal.
    ``prefer``: a fact column whose presence wins before the start time does. ``latest``:
    "start" when the record that started last wins, "end" when the one that ended last
    (start plus ``duration_ms``) does."""

    name: str
    table: Table
    columns: tuple[tuple[str, str], ...]
    prefer: str | None = None
    latest: str = "start"

    def __post_init__(self) -> None:
        if self.latest not in ("start", "end"):
            raise ValueError(f"latest must be 'start' or 'end', got {self.latest!r}")

    def typed(self) -> tuple[tuple[str, str, str], ...]:
        """(fact column, record column, DuckDB type) triples."""
        return tuple((fact, record, "INTEGER" if record == "0"
                      else self.table.column(record).type) for fact, record in self.columns)


PARTS: tuple[Part, ...] = (
    Part("row", ROW_RECORDS, (
        ("row_span_id", "span_id"), ("row_index", "0"), ("row_start", "start_time"),
        ("row_ms", "duration_ms"), ("row_status", "status_code"),
        ("row_error", "status_message"), ("run_name", "run_name"), ("cohort", "cohort"),
        ("expected", "expected"), ("objects", "objects"), ("row_instruction", "instruction"),
        ("row_image_sha256", "image_sha256"), ("row_instruction_kind", "instruction_kind"),
        ("row_batch_size", "batch_size"))),
    Part("encoder", ENCODER_RECORDS, (
        ("encoder_span_id", "span_id"), ("encoder_index", "record_index"),
        ("encoder_start", "start_time"), ("encoder_ms", "duration_ms"),
        ("encoder_status", "status_code"), ("encoder_model", "model"),
        ("checkpoint_sha256", "checkpoint_sha256"), ("top_k_labels", "top_k_labels"),
        ("top_k_scores", "top_k_scores"), ("embedding_dim", "embedding_dim"),
        ("encoder_entropy", "entropy"), ("encoder_image_sha256", "image_sha256"),
        ("encoder_multi_label", "multi_label"), ("encoder_batch_size", "batch_size")),
        prefer="top_k_labels"),
    Part("llm", LLM_RECORDS, (
        ("llm_span_id", "span_id"), ("llm_index", "record_index"), ("llm_start", "start_time"),
        ("llm_ms", "duration_ms"), ("llm_status", "status_code"), ("llm_model", "model"),
        ("llm_instruction", "instruction"), ("output", "output"),
        ("input_tokens", "input_tokens"), ("output_tokens", "output_tokens"),
        ("llm_instruction_kind", "instruction_kind"), ("llm_batch_size", "batch_size"),
        ("llm_encoder_span_id", "encoder_span_id")),
        latest="end"),
)
"""What each record kind contributes to the materialised pipeline rows
(``pipeline_row_facts`` / ``pipeline_row_parts``: the key, then these, in order).

Which record of a row makes each part: the row part, every row span (a row id repeated in a
trace makes two rows); the LLM part, the LLM record that ended last (start plus duration,
floored to a nanosecond; then the smaller span id, then record index): the row's answer is
the last one given, also when an agent's calls overlap and the first to start ends last; the
encoder part,
the encoder record the row's LLM record links to (:data:`LINK`), else the latest with a
reading (top-k labels), else the latest."""

LINK = ("llm_encoder_span_id", "encoder_span_id")
"""(LLM part column, encoder part column): the encoder record the LLM call used wins."""

FACT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("trace_id", "VARCHAR"), ("row_id", "VARCHAR"),
    *((fact, kind) for part in PARTS for fact, _, kind in part.typed()))
"""The columns of ``pipeline_row_facts`` and ``pipeline_row_parts``, with their types."""


ENCODER_READING_THRESHOLD = 0.5
"""Sigmoid score (0-1) at which a multi-label encoder's label counts as read in
``pipeline_rows.encoder_reading`` (the evaluators' default ``encoder_threshold``)."""


def encoder_reading_sql(labels: str, scores: str, multi_label: str, threshold: str) -> str:
    """SQL: the labels an encoder read, from the SQL expressions of its top-k ``labels``, their
    ``scores``, its ``multi_label`` flag and a ``threshold`` (0-1). A multi-label encoder
    (independent sigmoids) reads every label whose score is at least the threshold; a
    single-label one its top-1 (the rest of its top-k are near misses); NULL without labels
    (no encoder record). A NaN score is not read: it says nothing of the label, and DuckDB
    orders NaN above every number. The one statement of the rule: ``pipeline_rows`` and the
    evaluators' ``vlmscope_encoder_reading`` macro are both written from it."""
    return (f"CASE WHEN {labels} IS NULL THEN NULL::VARCHAR[] "
            f"WHEN coalesce({multi_label}, false) THEN list_filter({labels}, lambda x, i: "
            f"coalesce({scores}[i] >= {threshold} AND NOT isnan({scores}[i]), false)) "
            f"ELSE {labels}[1:1] END")


@dataclass(frozen=True)
class OutputColumn:
    """A ``pipeline_rows`` column: name, type, meaning and its SQL over the fact columns."""

    name: str
    type: str
    meaning: str
    sql: str = ""

    def select(self) -> str:
        """The column in a select list."""
        return self.name if not self.sql or self.sql == self.name else \
            f"{self.sql} AS {self.name}"


PIPELINE_ROWS: tuple[OutputColumn, ...] = (
    OutputColumn("row_id", "VARCHAR", "The pipeline row's id."),
    OutputColumn("trace_id", "VARCHAR", "Its trace."),
    OutputColumn("span_id", "VARCHAR", "Its row span.", "row_span_id"),
    OutputColumn("run", "VARCHAR", "The named run.", "run_name"),
    OutputColumn("cohort", "VARCHAR", "The cohort."),
    OutputColumn("image_sha256", "VARCHAR", "The image (the row's, else the encoder's).",
                 "coalesce(row_image_sha256, encoder_image_sha256)"),
    OutputColumn("expected", "VARCHAR", "The expected answer."),
    OutputColumn("objects", "VARCHAR[]", "The objects really in the image."),
    OutputColumn("encoder_model", "VARCHAR", "The encoder."),
    OutputColumn("checkpoint_sha256", "VARCHAR", "SHA-256 of the encoder's weights."),
    OutputColumn("top_k_labels", "VARCHAR[]", "The encoder's top-k labels."),
    OutputColumn("top_k_scores", "DOUBLE[]", "The encoder's top-k scores."),
    OutputColumn("embedding_dim", "INTEGER", "Dimension of the feature vector."),
    OutputColumn("encoder_entropy", "DOUBLE", "Entropy of the encoder's distribution (nats)."),
    OutputColumn("llm_model", "VARCHAR", "The language head's model."),
    OutputColumn("instruction", "VARCHAR", "The instruction (the LLM's, else the row's).",
                 "coalesce(llm_instruction, row_instruction)"),
    OutputColumn("output", "VARCHAR", "The answer."),
    OutputColumn("input_tokens", "BIGINT", "Prompt tokens."),
    OutputColumn("output_tokens", "BIGINT", "Generated tokens."),
    OutputColumn("encoder_ms", "DOUBLE", "The encoder call's duration (ms)."),
    OutputColumn("llm_ms", "DOUBLE", "The language-head call's duration (ms)."),
    OutputColumn("row_ms", "DOUBLE", "The row's duration (ms)."),
    OutputColumn("status", "VARCHAR", "ERROR when any of the three failed, else OK.",
                 "CASE WHEN 'ERROR' IN (row_status, encoder_status, llm_status) "
                 "THEN 'ERROR'\n         ELSE 'OK' END"),
    OutputColumn("error", "VARCHAR", "The row's error message.", "row_error"),
    OutputColumn("encoder_span_id", "VARCHAR", "The encoder span of the reading."),
    OutputColumn("llm_span_id", "VARCHAR", "The language-head span of the answer."),
    OutputColumn("start_time", "TIMESTAMP_NS", "When the row started.", "row_start"),
    OutputColumn("encoder_multi_label", "BOOLEAN",
                 "True when the encoder's scores are independent sigmoids."),
    OutputColumn("instruction_kind", "VARCHAR", "What the instruction asks for (the row's, "
                 "else the LLM's).", "coalesce(row_instruction_kind, llm_instruction_kind)"),
    OutputColumn("batch_size", "INTEGER", "Rows served together (NULL outside a batch).",
                 "coalesce(row_batch_size, encoder_batch_size, llm_batch_size)"),
    OutputColumn("encoder_share_ms", "DOUBLE", "The encoder call's duration over its batch "
                 "size (ms).", "encoder_ms / greatest(coalesce(encoder_batch_size, 1), 1)"),
    OutputColumn("llm_share_ms", "DOUBLE", "The LLM call's duration over its batch size (ms).",
                 "llm_ms / greatest(coalesce(llm_batch_size, 1), 1)"),
    OutputColumn("encoder_reading", "VARCHAR[]", "The labels the encoder read: those with "
                 f"score >= {ENCODER_READING_THRESHOLD} (not NaN) for a multi-label encoder, "
                 "its top-1 for a single-label one (NULL: no encoder record).",
                 encoder_reading_sql("top_k_labels", "top_k_scores", "encoder_multi_label",
                                     f"{ENCODER_READING_THRESHOLD}::DOUBLE")),
)
"""The ``pipeline_rows`` view, column by column."""

ARROW_TYPES: dict[str, pa.DataType] = {
    "VARCHAR": pa.string(), "INTEGER": pa.int32(), "BIGINT": pa.int64(),
    "DOUBLE": pa.float64(), "BOOLEAN": pa.bool_(), "TIMESTAMP_NS": pa.timestamp("ns"),
    "VARCHAR[]": pa.list_(pa.string()), "DOUBLE[]": pa.list_(pa.float64()),
    "BIGINT[]": pa.list_(pa.int64()), "FLOAT[]": pa.list_(pa.float32()),
}
"""The Arrow type of each DuckDB type the spec uses."""


def arrow_schema(table: Table) -> pa.Schema:
    """The Arrow schema of ``table``, column for column."""
    return pa.schema([(c.name, ARROW_TYPES[c.type]) for c in table.columns])


def pipeline_rows_schema() -> pa.Schema:
    """The Arrow schema of ``pipeline_rows``, column for column."""
    return pa.schema([(c.name, ARROW_TYPES[c.type]) for c in PIPELINE_ROWS])


def pipeline_rows_select() -> str:
    """The select list of ``pipeline_rows`` over the fact columns."""
    return ",\n    ".join(c.select() for c in PIPELINE_ROWS)


def _duckdb_type(name: str) -> str:
    """DuckDB's own spelling of a spec type (as information_schema shows it)."""
    return {"TIMESTAMP_NS": "TIMESTAMP_NS", "VARCHAR[]": "VARCHAR[]"}.get(name, name)


def out_of_step(con: object | None = None) -> list[str]:
    """Every place of the store whose shape of a table differs from the spec, one line each
    naming the place and the difference: the store's tables and view (a store freshly
    migrated with the frozen migrations, or ``con``'s), the converters' Arrow schemas, the
    native converter's column counts and the materialised tables' columns. Empty when all
    agree. (The evaluators, a layer above, check themselves against the spec:
    :func:`vlmscope.evaluators.spec_check.out_of_step`.)"""
    import duckdb

    from vlmscope.collectors import convert, facts, normalize
    from vlmscope.collectors.schema import migrate

    problems: list[str] = []

    def compare(place: str, found: list[tuple[str, str]], wanted: list[tuple[str, str]]
                ) -> None:
        if found != wanted:
            missing = [w for w in wanted if w not in found]
            extra = [f for f in found if f not in wanted]
            problems.append(f"{place}: differs from the spec (missing or changed {missing}, "
                            f"not in the spec {extra})" if missing or extra else
                            f"{place}: columns in another order than the spec's")

    def arrow(schema: pa.Schema) -> list[tuple[str, str]]:
        return [(f.name, type_name(f.type)) for f in schema]

    own = con is None
    if own:
        con = duckdb.connect(":memory:")
        migrate(con)
    try:
        for table in (SPANS, *DERIVED):
            stored = con.execute(  # type: ignore[attr-defined]
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = ? ORDER BY ordinal_position", [table.name]).fetchall()
            compare(f"store table {table.name} (migrations)", stored,
                    [(c.name, _duckdb_type(c.type)) for c in table.columns])
        for name in (facts.FACTS, facts.PARTS):
            stored = con.execute(  # type: ignore[attr-defined]
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = ? ORDER BY ordinal_position", [name]).fetchall()
            compare(f"store table {name} (migrations)", stored, list(FACT_COLUMNS))
        view = con.sql(  # type: ignore[attr-defined]
            "SELECT * FROM pipeline_rows LIMIT 0").to_arrow_table()
        compare("store view pipeline_rows (migrations)", arrow(view.schema),
                arrow(pipeline_rows_schema()))
    finally:
        if own:
            con.close()  # type: ignore[attr-defined]
    for table in DERIVED:
        compare(f"normalize.TABLES[{table.name!r}] (Arrow schema of the converters)",
                arrow(normalize.TABLES[table.name]), arrow(arrow_schema(table)))
    compare("convert.SPAN_SCHEMA", arrow(convert.SPAN_SCHEMA), arrow(arrow_schema(SPANS)))
    widths = convert.native_widths()
    if widths is not None:
        wanted = tuple(len(t.columns) for t in (SPANS, *DERIVED))
        if widths != wanted:
            problems.append(f"native converter _spans_native.c (WIDTH): {widths} columns per "
                            f"table, the spec has {wanted}")
    compare("facts.SCHEMA (pipeline_row_facts / pipeline_row_parts)", arrow(facts.SCHEMA),
            [(name, type_name(ARROW_TYPES[kind])) for name, kind in FACT_COLUMNS])
    return problems


def type_name(data_type: pa.DataType) -> str:
    """An Arrow type's name, lists named by their item type alone (DuckDB and pyarrow name
    the item field differently)."""
    if pa.types.is_list(data_type):
        return f"list<{type_name(data_type.value_type)}>"
    return str(data_type)
