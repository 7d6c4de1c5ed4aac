"""Derive the per-row tables (``row_records``, ``encoder_records``, ``llm_records``,
``embeddings``) from spans, in SQL.

One implementation serves every way spans arrive (the in-process exporter, the OTLP receiver,
an import) and the rebuild of a store: each statement reads a relation of spans of one role
(same columns as ``spans``) and inserts what it derives. Each span's attribute JSON is parsed
once (one multi-path ``json_extract``), not once per field. Batched spans (one encoder forward
or one ``generate`` for N rows) are unnested here: image ``i`` of a batch owns element ``i`` of
each per-image array and elements ``i*k+1 .. (i+1)*k`` of the flattened top-k lists (see
:mod:`vlmscope.conventions`).
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb

from vlmscope import conventions as cv

_SPAN_COLUMNS = "trace_id, span_id, start_time, duration_ms, status_code, status_message"


def _extract(source: str, fields: Sequence[tuple[str, str, str]]) -> str:
    """SELECT over ``source`` that parses ``attributes`` once and names each field.

    ``fields`` are (output name, attribute key, kind) with kind ``text``, ``int`` or an SQL
    list type such as ``VARCHAR[]``.
    """
    paths = ", ".join(f"'$.\"{key}\"'" for _, key, _ in fields)
    columns = []
    for i, (name, _, kind) in enumerate(fields, start=1):
        if kind == "text":
            columns.append(f"v[{i}]->>'$' AS {name}")
        elif kind == "int":
            columns.append(f"TRY_CAST(v[{i}]->>'$' AS BIGINT) AS {name}")
        else:
            columns.append(f"TRY_CAST(v[{i}] AS {kind}) AS {name}")
    return (
        f"SELECT {_SPAN_COLUMNS}, {', '.join(columns)} "
        f"FROM (SELECT *, json_extract(attributes, [{paths}]) AS v FROM {source})"
    )


def role_filter(source: str, role: str) -> str:
    """A relation of the spans of ``source`` whose ``vlmscope.span.role`` is ``role``."""
    return f"(SELECT * FROM {source} WHERE attributes->>'$.\"{cv.VLMSCOPE_SPAN_ROLE}\"' = '{role}')"


def row_records_sql(rows: str) -> str:
    """SQL that inserts the ``row_records`` of the row spans in relation ``rows``."""
    select = _extract(rows, [
        ("row_id", cv.VLMSCOPE_ROW_ID, "text"),
        ("run_name", cv.VLMSCOPE_RUN_NAME, "text"),
        ("cohort", cv.VLMSCOPE_COHORT, "text"),
        ("expected", cv.VLMSCOPE_ROW_EXPECTED, "text"),
        ("objects", cv.VLMSCOPE_ROW_OBJECTS, "VARCHAR[]"),
        ("instruction", cv.VLMSCOPE_ROW_INSTRUCTION, "text"),
        ("image_sha256", cv.VISION_IMAGE_SHA256, "text"),
    ])
    return f"""
    INSERT INTO row_records
    SELECT trace_id, span_id, row_id, run_name, cohort, expected, objects, instruction,
        image_sha256, start_time, duration_ms, status_code, status_message
    FROM ({select}) WHERE row_id IS NOT NULL
    """


def encoder_records_sql(encoders: str) -> str:
    """SQL that inserts one ``encoder_records`` row per image of the encoder spans in
    relation ``encoders``."""
    select = _extract(encoders, [
        ("row_ids", cv.VLMSCOPE_ROW_IDS, "VARCHAR[]"),
        ("image_sha256", cv.VISION_IMAGE_SHA256, "VARCHAR[]"),
        ("model_name", cv.EMBEDDING_MODEL_NAME, "text"),
        ("architecture", cv.VISION_ENCODER_ARCHITECTURE, "text"),
        ("checkpoint_sha256", cv.VISION_ENCODER_CHECKPOINT_SHA256, "text"),
        ("layer", cv.VISION_ENCODER_LAYER, "text"),
        ("embedding_dim", cv.VISION_ENCODER_EMBEDDING_DIM, "int"),
        ("k", cv.VISION_ENCODER_TOP_K, "int"),
        ("labels", cv.VISION_ENCODER_TOP_K_LABELS, "VARCHAR[]"),
        ("scores", cv.VISION_ENCODER_TOP_K_SCORES, "DOUBLE[]"),
        ("class_ids", cv.VISION_ENCODER_TOP_K_CLASS_IDS, "BIGINT[]"),
        ("entropy", cv.VISION_ENCODER_ENTROPY, "DOUBLE[]"),
        ("l2_norm", cv.VISION_ENCODER_EMBEDDING_L2_NORM, "DOUBLE[]"),
        ("batch_size", cv.VISION_ENCODER_BATCH_SIZE, "int"),
    ])
    return f"""
    INSERT INTO encoder_records
    WITH s AS (
        SELECT *, coalesce(k, 0) AS kk,
            greatest(coalesce(batch_size, 0), coalesce(len(row_ids), 0), 1) AS n
        FROM ({select})
    ), images AS (
        SELECT *, unnest(range(n)) AS i FROM s
    )
    SELECT trace_id, span_id, i, row_ids[i + 1], image_sha256[i + 1],
        coalesce(model_name, architecture), architecture, checkpoint_sha256, layer,
        embedding_dim,
        CASE WHEN kk > 0 THEN list_slice(labels, i * kk + 1, (i + 1) * kk) END,
        CASE WHEN kk > 0 THEN list_slice(scores, i * kk + 1, (i + 1) * kk) END,
        CASE WHEN kk > 0 THEN list_slice(class_ids, i * kk + 1, (i + 1) * kk) END,
        entropy[i + 1], l2_norm[i + 1], start_time, duration_ms, status_code
    FROM images
    """


def llm_records_sql(llms: str) -> str:
    """SQL that inserts one ``llm_records`` row per output of the LLM spans in relation
    ``llms``."""
    select = _extract(llms, [
        ("row_ids", cv.VLMSCOPE_ROW_IDS, "VARCHAR[]"),
        ("llm_model_name", cv.LLM_MODEL_NAME, "text"),
        ("request_model", cv.GEN_AI_REQUEST_MODEL, "text"),
        ("provider_name", cv.GEN_AI_PROVIDER_NAME, "text"),
        ("llm_provider", cv.LLM_PROVIDER, "text"),
        ("instructions", cv.VLMSCOPE_LLM_INSTRUCTIONS, "VARCHAR[]"),
        ("instruction_one", cv.INPUT_VALUE, "text"),
        ("outputs", cv.VLMSCOPE_LLM_OUTPUTS, "VARCHAR[]"),
        ("output_one", cv.OUTPUT_VALUE, "text"),
        ("input_tokens", cv.VLMSCOPE_LLM_INPUT_TOKENS, "BIGINT[]"),
        ("input_tokens_one", cv.GEN_AI_USAGE_INPUT_TOKENS, "int"),
        ("output_tokens", cv.VLMSCOPE_LLM_OUTPUT_TOKENS, "BIGINT[]"),
        ("output_tokens_one", cv.GEN_AI_USAGE_OUTPUT_TOKENS, "int"),
        ("encoder_span_id", cv.VISION_ENCODER_SPAN_ID, "text"),
    ])
    return f"""
    INSERT INTO llm_records
    WITH s AS (
        SELECT *, greatest(coalesce(len(row_ids), 0), coalesce(len(outputs), 0), 1) AS n
        FROM ({select})
    ), outputs AS (
        SELECT *, unnest(range(n)) AS i FROM s
    )
    SELECT trace_id, span_id, i, row_ids[i + 1],
        coalesce(llm_model_name, request_model), coalesce(provider_name, llm_provider),
        coalesce(instructions[i + 1], CASE WHEN n = 1 THEN instruction_one END),
        coalesce(outputs[i + 1], CASE WHEN n = 1 THEN output_one END),
        coalesce(input_tokens[i + 1], CASE WHEN n = 1 THEN input_tokens_one END),
        coalesce(output_tokens[i + 1], CASE WHEN n = 1 THEN output_tokens_one END),
        encoder_span_id, start_time, duration_ms, status_code
    FROM outputs
    """


def embeddings_sql(vectors: str) -> str:
    """SQL that inserts the vectors of relation ``vectors`` (trace_id, span_id, record_index,
    vector) into ``embeddings``, labelled from their encoder records (already inserted)."""
    return f"""
    INSERT INTO embeddings
    SELECT v.trace_id, v.span_id, v.record_index, r.row_id, r.model, r.checkpoint_sha256,
        len(v.vector), v.vector
    FROM {vectors} v
    LEFT JOIN encoder_records r
        ON r.span_id = v.span_id AND r.trace_id = v.trace_id AND r.record_index = v.record_index
    """


def derive(
    con: duckdb.DuckDBPyConnection,
    *,
    rows: str | None,
    encoders: str | None,
    llms: str | None,
) -> None:
    """Insert the per-row records derived from relations of row, encoder and LLM spans
    (None: no spans of that role)."""
    for relation, sql in ((rows, row_records_sql), (encoders, encoder_records_sql),
                          (llms, llm_records_sql)):
        if relation is not None:
            con.execute(sql(relation))


def derive_from(con: duckdb.DuckDBPyConnection, source: str) -> None:
    """Insert the per-row records derived from any relation of spans (roles mixed)."""
    derive(
        con,
        rows=role_filter(source, cv.ROLE_ROW),
        encoders=role_filter(source, cv.ROLE_ENCODER),
        llms=role_filter(source, cv.ROLE_LLM),
    )


def rebuild(con: duckdb.DuckDBPyConnection) -> None:
    """Recompute ``row_records``, ``encoder_records`` and ``llm_records`` from ``spans``."""
    con.execute("BEGIN TRANSACTION")
    try:
        for table in ("row_records", "encoder_records", "llm_records"):
            con.execute(f"DELETE FROM {table}")
        derive_from(con, "spans")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
