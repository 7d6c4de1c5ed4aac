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
* view ``pipeline_rows`` - one row per pipeline row: the three joined (since schema 7 also
  the encoder's multi-label flag, the instruction kind, the batch size and each call's share
  of a batched call's time; since schema 9 the encoder's reading, ``encoder_reading``, which
  since schema 11 leaves out a NaN score). Since schema version 4 the join is kept
  materialised at ingest in ``pipeline_row_facts`` (rows whose row span arrived) and
  ``pipeline_row_parts`` (parts still waiting); see :mod:`vlmscope.collectors.facts`.
* ``evaluations`` - one row per pipeline row judged by an evaluator (score, passed, label,
  explanation, metadata as JSON text, annotator kind), keyed by run id, row id, trace id and
  judged span id.
* ``eval_runs`` - one row per evaluator per evaluation run: its configuration, the cohort and
  checkpoints it covered, its summary (JSON text), when it ran (``created_at``, UTC) and the
  named run it was restricted to (``run_name``, since schema 6).
* ``datasets`` / ``dataset_rows`` - named cohorts (:class:`vlmscope.Dataset`): one row per
  dataset (its fingerprint, the dataset it was derived from), one per dataset row (image
  content hash, a small PNG thumbnail, ground truth, and for a perturbed row its source row,
  corruption and severity; since schema 9 the instruction kind the user gave it).
  ``dataset_images`` holds full images by content hash, only when
  asked to.
* ``dataset_runs`` - one row per named run of a dataset through a pipeline: the evaluation
  run that judged it, rows and failures, the encoder checkpoints, embedding dimensions and
  language-head models its rows saw (JSON counts), the mixed-checkpoint flag and its summary.

A migration runs once; ``schema_migrations`` records which ran. The migrations are frozen SQL
text in :mod:`vlmscope.collectors.migrations`; never edit one that has shipped.
"""

from __future__ import annotations

import duckdb

from vlmscope.collectors.migrations import MIGRATIONS, Migration

LATEST_EVALUATIONS_SQL = """
    SELECT e.* FROM evaluations e
    LEFT JOIN eval_runs r ON r.run_id = e.run_id AND r.evaluator = e.evaluator
    QUALIFY row_number() OVER (
        PARTITION BY e.trace_id, e.row_id, e.evaluator
        ORDER BY r.created_at DESC NULLS LAST, e.run_id DESC) = 1
"""
"""The latest evaluation of each pipeline row by each evaluator: ``vlmscope eval`` may judge
a run many times, and counts, rates and verdicts read only the last judgement."""

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "Migration", "applied_version", "migrate"]

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
