"""The Python reference of the one pipeline-row assembler (``facts.assemble_sql``, run by
DuckDB): the same rows from record tables, written plainly, to test it against."""

from __future__ import annotations

import duckdb
import pyarrow as pa

from vlmscope.collectors import facts, spec


def _ns(value) -> int | None:
    """A start time (datetime, ns integer or None) as epoch nanoseconds."""
    if value is None or isinstance(value, int):
        return value
    return pa.scalar(value, pa.timestamp("ns")).cast(pa.int64()).as_py()


def _latest(part: spec.Part, record: dict) -> int | None:
    """The time that makes a record of ``part`` the latest: its start, or its end (start
    plus duration, floored to a nanosecond) for a part ordered by end."""
    start = _ns(record.get("start_time"))
    if start is None or part.latest == "start":
        return start
    return start + facts.duration_ns(record.get("duration_ms"))


def _rank(part: spec.Part, record: dict, linked: str | None = None) -> tuple:
    """Sort key of a record of ``part``: the smallest wins (the linked encoder record, then
    one with the preferred column present, then the latest, a missing time the earliest,
    then the smaller span id and record index)."""
    columns = dict(part.columns)
    at = _latest(part, record)
    key = (at is None, -(at or 0), record["span_id"], record.get("record_index") or 0)
    if part.prefer is not None:
        key = (record.get(columns[part.prefer]) is None, *key)
    if part.name == "encoder":
        key = (record["span_id"] != linked, *key)
    return key


def assemble(tables: dict[str, pa.Table]) -> list[dict]:
    """The assembled parts of record tables (``row_records`` ... as Arrow), one dict of
    ``facts.SCHEMA`` columns per row span (per key when it has none), start times in ns."""
    by_part = {part.name: part for part in spec.PARTS}
    records: dict[str, dict[tuple, list[dict]]] = {p.name: {} for p in spec.PARTS}
    for part in spec.PARTS:
        table = tables.get(part.table.name)
        for record in table.to_pylist() if table is not None else []:
            if record["row_id"] is not None:
                records[part.name].setdefault(
                    (record["trace_id"], record["row_id"]), []).append(record)
    keys = {key for kind in records.values() for key in kind}
    out = []
    for key in keys:
        llms = records["llm"].get(key, [])
        llm = min(llms, key=lambda r: _rank(by_part["llm"], r)) if llms else None
        linked = llm.get("encoder_span_id") if llm else None
        encoders = records["encoder"].get(key, [])
        encoder = min(encoders, key=lambda r: _rank(by_part["encoder"], r, linked)) \
            if encoders else None
        for row in records["row"].get(key) or [None]:
            fact = {"trace_id": key[0], "row_id": key[1]}
            for part, record in (("row", row), ("encoder", encoder), ("llm", llm)):
                for column, source in by_part[part].columns:
                    if record is None:
                        fact[column] = None
                    elif source == "0":
                        fact[column] = 0
                    elif source == "start_time":
                        fact[column] = _ns(record[source])
                    else:
                        fact[column] = record.get(source)
            out.append(fact)
    return out


# The plain join, as the store's first schema defined the view (with the record index as the
# last tie-break, which that definition left to chance), the encoder record picked as
# schema 8 does (the one the row's LLM record links to, then one with a reading, then the
# latest) and the LLM record as schema 10 does (the one that ended last).
REFERENCE = """
    WITH llm AS (
        SELECT * FROM llm_records WHERE row_id IS NOT NULL
        QUALIFY row_number() OVER (PARTITION BY trace_id, row_id ORDER BY
            epoch_ns(start_time) + floor(coalesce(duration_ms, 0) * 1000000)::BIGINT DESC,
            span_id, record_index) = 1
    ), enc AS (
        SELECT e.* FROM encoder_records e
        LEFT JOIN llm l ON l.trace_id = e.trace_id AND l.row_id = e.row_id
        WHERE e.row_id IS NOT NULL
        QUALIFY row_number() OVER (PARTITION BY e.trace_id, e.row_id ORDER BY
            e.span_id IS DISTINCT FROM l.encoder_span_id, e.top_k_labels IS NULL,
            e.start_time DESC, e.span_id, e.record_index) = 1
    )
    SELECT r.row_id, r.trace_id, r.span_id, r.run_name AS run, r.cohort,
        coalesce(r.image_sha256, e.image_sha256) AS image_sha256, r.expected, r.objects,
        e.model AS encoder_model, e.checkpoint_sha256, e.top_k_labels, e.top_k_scores,
        e.embedding_dim, e.entropy AS encoder_entropy, l.model AS llm_model,
        coalesce(l.instruction, r.instruction) AS instruction, l.output, l.input_tokens,
        l.output_tokens, e.duration_ms AS encoder_ms, l.duration_ms AS llm_ms,
        r.duration_ms AS row_ms,
        CASE WHEN 'ERROR' IN (r.status_code, e.status_code, l.status_code) THEN 'ERROR'
             ELSE 'OK' END AS status,
        r.status_message AS error, e.span_id AS encoder_span_id, l.span_id AS llm_span_id,
        r.start_time, e.multi_label AS encoder_multi_label,
        coalesce(r.instruction_kind, l.instruction_kind) AS instruction_kind,
        coalesce(r.batch_size, e.batch_size, l.batch_size) AS batch_size,
        e.duration_ms / greatest(coalesce(e.batch_size, 1), 1) AS encoder_share_ms,
        l.duration_ms / greatest(coalesce(l.batch_size, 1), 1) AS llm_share_ms,
        CASE WHEN e.top_k_labels IS NULL THEN NULL
             WHEN e.multi_label THEN [x[1] FOR x IN list_zip(e.top_k_labels, e.top_k_scores)
                                     IF x[2] >= 0.5 AND NOT isnan(x[2])]
             ELSE e.top_k_labels[1:1] END AS encoder_reading
    FROM row_records r
    LEFT JOIN enc e ON e.trace_id = r.trace_id AND e.row_id = r.row_id
    LEFT JOIN llm l ON l.trace_id = r.trace_id AND l.row_id = r.row_id
"""


def store_at_version(con: duckdb.DuckDBPyConnection, version: int) -> None:
    """Migrate an empty database to ``version`` only, as an older vlmscope left it."""
    from vlmscope.collectors.schema import MIGRATIONS

    con.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, "
                "name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT "
                "current_timestamp)")
    for migration in MIGRATIONS[:version]:
        for statement in migration.statements:
            con.execute(statement)
        con.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
                    [migration.version, migration.name])
