"""The DuckDB schema of a vlmscope store, as an ordered list of versioned migrations.

Tables:

* ``spans`` - every span, losslessly: typed columns for ids, timing, status and service, and
  JSON text for attributes, events, links and resource (VARCHAR: DuckDB's JSON functions
  and ``->>`` read it; the JSON type would re-validate every document on insert). Embedding
  vectors are moved out of the attributes into ``embeddings`` (they are large; the export
  puts them back).
* ``embeddings`` - one row per image whose feature vector was captured.
* ``encoder_records`` / ``llm_records`` / ``row_records`` - spans normalised per pipeline row
  (one per image of a batched encoder call, one per output of a batched ``generate``). They are
  derived from the spans at ingest by :mod:`vlmscope.collectors.normalize` and can be rebuilt.
* view ``pipeline_rows`` - one row per pipeline row: the three joined. Since schema version 4
  the join is kept materialised at ingest in ``pipeline_row_facts`` (rows whose row span
  arrived) and ``pipeline_row_parts`` (parts still waiting); see
  :mod:`vlmscope.collectors.facts`.
* ``evaluations`` - one row per pipeline row judged by an evaluator (score, passed, label,
  explanation, metadata as JSON text, annotator kind), keyed by run id, row id, trace id and
  judged span id.
* ``eval_runs`` - one row per evaluator per evaluation run: its configuration, the cohort and
  checkpoints it covered, its summary (JSON text), when it ran (``created_at``, UTC) and the
  named run it was restricted to (``run_name``, since schema 6).
* ``datasets`` / ``dataset_rows`` - named cohorts (:class:`vlmscope.Dataset`): one row per
  dataset (its fingerprint, the dataset it was derived from), one per dataset row (image
  content hash, a small PNG thumbnail, ground truth, and for a perturbed row its source row,
  corruption and severity). ``dataset_images`` holds full images by content hash, only when
  asked to.
* ``dataset_runs`` - one row per named run of a dataset through a pipeline: the evaluation
  run that judged it, rows and failures, the encoder checkpoints, embedding dimensions and
  language-head models its rows saw (JSON counts), the mixed-checkpoint flag and its summary.

A migration runs once; ``schema_migrations`` records which ran. Add a migration by appending
to :data:`MIGRATIONS`; never edit one that has shipped.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from vlmscope.collectors import facts

LATEST_EVALUATIONS_SQL = """
    SELECT e.* FROM evaluations e
    LEFT JOIN eval_runs r ON r.run_id = e.run_id AND r.evaluator = e.evaluator
    QUALIFY row_number() OVER (
        PARTITION BY e.trace_id, e.row_id, e.evaluator
        ORDER BY r.created_at DESC NULLS LAST, e.run_id DESC) = 1
"""
"""The latest evaluation of each pipeline row by each evaluator: ``vlmscope eval`` may judge
a run many times, and counts, rates and verdicts read only the last judgement."""


@dataclass(frozen=True)
class Migration:
    """One schema step: a version number, a name and the SQL statements it runs."""

    version: int
    name: str
    statements: tuple[str, ...]


_V1_TABLES = (
    """
    CREATE TABLE spans (
        trace_id VARCHAR NOT NULL,
        span_id VARCHAR NOT NULL,
        parent_span_id VARCHAR,
        name VARCHAR NOT NULL,
        kind VARCHAR NOT NULL,
        start_time TIMESTAMP_NS NOT NULL,
        end_time TIMESTAMP_NS NOT NULL,
        duration_ms DOUBLE NOT NULL,
        status_code VARCHAR NOT NULL,
        status_message VARCHAR,
        service_name VARCHAR,
        scope_name VARCHAR,
        scope_version VARCHAR,
        trace_state VARCHAR,
        trace_flags INTEGER,
        attributes VARCHAR,
        events VARCHAR,
        links VARCHAR,
        resource VARCHAR,
        dropped_attributes INTEGER,
        dropped_events INTEGER,
        dropped_links INTEGER
    )
    """,
    """
    CREATE TABLE embeddings (
        trace_id VARCHAR NOT NULL,
        span_id VARCHAR NOT NULL,
        record_index INTEGER NOT NULL,
        row_id VARCHAR,
        model VARCHAR,
        checkpoint_sha256 VARCHAR,
        dimension INTEGER NOT NULL,
        vector FLOAT[] NOT NULL
    )
    """,
    """
    CREATE TABLE encoder_records (
        trace_id VARCHAR NOT NULL,
        span_id VARCHAR NOT NULL,
        record_index INTEGER NOT NULL,
        row_id VARCHAR,
        image_sha256 VARCHAR,
        model VARCHAR,
        architecture VARCHAR,
        checkpoint_sha256 VARCHAR,
        layer VARCHAR,
        embedding_dim INTEGER,
        top_k_labels VARCHAR[],
        top_k_scores DOUBLE[],
        top_k_class_ids BIGINT[],
        entropy DOUBLE,
        embedding_l2_norm DOUBLE,
        start_time TIMESTAMP_NS,
        duration_ms DOUBLE,
        status_code VARCHAR
    )
    """,
    """
    CREATE TABLE llm_records (
        trace_id VARCHAR NOT NULL,
        span_id VARCHAR NOT NULL,
        record_index INTEGER NOT NULL,
        row_id VARCHAR,
        model VARCHAR,
        provider VARCHAR,
        instruction VARCHAR,
        output VARCHAR,
        input_tokens BIGINT,
        output_tokens BIGINT,
        encoder_span_id VARCHAR,
        start_time TIMESTAMP_NS,
        duration_ms DOUBLE,
        status_code VARCHAR
    )
    """,
    """
    CREATE TABLE row_records (
        trace_id VARCHAR NOT NULL,
        span_id VARCHAR NOT NULL,
        row_id VARCHAR NOT NULL,
        run_name VARCHAR,
        cohort VARCHAR,
        expected VARCHAR,
        objects VARCHAR[],
        instruction VARCHAR,
        image_sha256 VARCHAR,
        start_time TIMESTAMP_NS,
        duration_ms DOUBLE,
        status_code VARCHAR,
        status_message VARCHAR
    )
    """,
    # The last encoder call and the last language-head call of a row are the ones that made
    # its answer (a row may re-encode or re-ask; the final reading is what the head used).
    """
    CREATE VIEW pipeline_rows AS
    WITH enc AS (
        SELECT * FROM encoder_records WHERE row_id IS NOT NULL
        QUALIFY row_number() OVER (
            PARTITION BY trace_id, row_id ORDER BY start_time DESC, span_id) = 1
    ), llm AS (
        SELECT * FROM llm_records WHERE row_id IS NOT NULL
        QUALIFY row_number() OVER (
            PARTITION BY trace_id, row_id ORDER BY start_time DESC, span_id) = 1
    )
    SELECT
        r.row_id,
        r.trace_id,
        r.span_id,
        r.run_name AS run,
        r.cohort,
        coalesce(r.image_sha256, e.image_sha256) AS image_sha256,
        r.expected,
        r.objects,
        e.model AS encoder_model,
        e.checkpoint_sha256,
        e.top_k_labels,
        e.top_k_scores,
        e.embedding_dim,
        e.entropy AS encoder_entropy,
        l.model AS llm_model,
        coalesce(l.instruction, r.instruction) AS instruction,
        l.output,
        l.input_tokens,
        l.output_tokens,
        e.duration_ms AS encoder_ms,
        l.duration_ms AS llm_ms,
        r.duration_ms AS row_ms,
        CASE
            WHEN 'ERROR' IN (r.status_code, e.status_code, l.status_code) THEN 'ERROR'
            ELSE 'OK'
        END AS status,
        r.status_message AS error,
        e.span_id AS encoder_span_id,
        l.span_id AS llm_span_id,
        r.start_time
    FROM row_records r
    LEFT JOIN enc e ON e.trace_id = r.trace_id AND e.row_id = r.row_id
    LEFT JOIN llm l ON l.trace_id = r.trace_id AND l.row_id = r.row_id
    """,
)

# Evaluation results, in the OpenInference annotation shape: one row per judged pipeline row
# and evaluator (``evaluations``), one row per evaluator and run (``eval_runs``).
_V2_EVALUATIONS = (
    """
    CREATE TABLE evaluations (
        run_id VARCHAR NOT NULL,
        row_id VARCHAR,
        trace_id VARCHAR,
        span_id VARCHAR,
        evaluator VARCHAR NOT NULL,
        score DOUBLE,
        passed BOOLEAN,
        label VARCHAR,
        explanation VARCHAR,
        metadata VARCHAR,
        annotator_kind VARCHAR NOT NULL
    )
    """,
    """
    CREATE TABLE eval_runs (
        run_id VARCHAR NOT NULL,
        evaluator VARCHAR NOT NULL,
        config VARCHAR,
        cohort VARCHAR,
        checkpoints VARCHAR[],
        summary VARCHAR,
        created_at TIMESTAMP NOT NULL
    )
    """,
)

# Named cohorts and the runs of pipelines over them (vlmscope.Dataset, vlmscope diff).
_V3_DATASETS = (
    """
    CREATE TABLE datasets (
        name VARCHAR NOT NULL,
        fingerprint VARCHAR NOT NULL,
        num_rows INTEGER NOT NULL,
        derived_from VARCHAR,
        created_at TIMESTAMP NOT NULL
    )
    """,
    """
    CREATE TABLE dataset_rows (
        dataset VARCHAR NOT NULL,
        row_id VARCHAR NOT NULL,
        position INTEGER NOT NULL,
        image_sha256 VARCHAR,
        image_uri VARCHAR,
        thumbnail BLOB,
        image_error VARCHAR,
        instruction VARCHAR,
        expected VARCHAR,
        objects VARCHAR[],
        caption VARCHAR,
        tags VARCHAR[],
        source_row_id VARCHAR,
        corruption VARCHAR,
        severity INTEGER
    )
    """,
    """
    CREATE TABLE dataset_images (
        image_sha256 VARCHAR NOT NULL,
        data BLOB NOT NULL
    )
    """,
    """
    CREATE TABLE dataset_runs (
        run_name VARCHAR NOT NULL,
        dataset VARCHAR NOT NULL,
        eval_run_id VARCHAR,
        num_rows INTEGER NOT NULL,
        failed_rows INTEGER NOT NULL,
        checkpoints VARCHAR,
        embedding_dims VARCHAR,
        llm_models VARCHAR,
        mixed_checkpoints BOOLEAN NOT NULL,
        summary VARCHAR,
        created_at TIMESTAMP NOT NULL
    )
    """,
)

# Long, varied text (span attributes as JSON, evaluation explanations) and per-row ids:
# zstd writes them faster than the automatic choice and smaller (benchmarks/README.md).
_ZSTD_COLUMNS = {
    "spans": ("attributes", "events", "links", "resource"),
    "evaluations": ("row_id", "trace_id", "span_id", "explanation", "metadata"),
}


def _recompress(table: str, definition: str) -> tuple[str, ...]:
    """Statements that rebuild ``table`` (whose CREATE body is ``definition``) with zstd
    compression on its :data:`_ZSTD_COLUMNS`, keeping its rows."""
    lines = []
    for line in definition.strip().splitlines():
        name = line.strip().split(" ", 1)[0]
        if name in _ZSTD_COLUMNS[table]:
            line = line.rstrip(",") + " USING COMPRESSION zstd" + ("," if line.endswith(",")
                                                                   else "")
        lines.append(line)
    new = f"_vlmscope_{table}_v5"
    return (
        f"CREATE TABLE {new} (\n" + "\n".join(lines) + "\n)",
        f"INSERT INTO {new} SELECT * FROM {table}",
        f"DROP TABLE {table}",
        f"ALTER TABLE {new} RENAME TO {table}",
    )


def _body(statement: str) -> str:
    """The column list of a ``CREATE TABLE name (...)`` statement."""
    return statement[statement.index("(") + 1:statement.rindex(")")]


_V5_ZSTD = (*_recompress("spans", _body(_V1_TABLES[0])),
            *_recompress("evaluations", _body(_V2_EVALUATIONS[0])))

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "spans, embeddings, per-row records and pipeline_rows", _V1_TABLES),
    Migration(2, "evaluations and eval_runs", _V2_EVALUATIONS),
    Migration(3, "datasets, dataset rows and images, dataset runs", _V3_DATASETS),
    Migration(4, "pipeline_rows materialised at ingest", facts.migration_statements()),
    Migration(5, "zstd compression for span JSON and evaluation text", _V5_ZSTD),
    Migration(6, "eval_runs.run_name: the named run an evaluation was restricted to",
              ("ALTER TABLE eval_runs ADD COLUMN run_name VARCHAR",)),
)
"""Every schema step, in order."""

SCHEMA_VERSION = MIGRATIONS[-1].version
"""The schema version this vlmscope writes."""


def applied_version(con: duckdb.DuckDBPyConnection) -> int:
    """The highest migration applied to the database behind ``con`` (0 for an empty file)."""
    # fetchall, not fetchone: DuckDB 2.0 keeps a partly fetched result open on the connection.
    ((exists,),) = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_migrations'"
    ).fetchall()
    if exists == 0:
        return 0
    ((version,),) = con.execute(
        "SELECT coalesce(max(version), 0) FROM schema_migrations").fetchall()
    return int(version)


def migrate(con: duckdb.DuckDBPyConnection) -> int:
    """Apply every migration not yet applied, each in its own transaction; return the version.

    Raises :class:`RuntimeError` when the file was written by a newer vlmscope.
    """
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name VARCHAR NOT NULL,"
        " applied_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp)"
    )
    current = applied_version(con)
    if current > SCHEMA_VERSION:
        raise RuntimeError(
            f"this store has schema version {current}, newer than this vlmscope understands "
            f"({SCHEMA_VERSION}); upgrade vlmscope to read or write it"
        )
    for migration in MIGRATIONS:
        if migration.version <= current:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            for statement in migration.statements:
                con.execute(statement)
            con.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
                [migration.version, migration.name],
            )
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
    return SCHEMA_VERSION
