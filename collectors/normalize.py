"""Derive the per-row tables (``row_records``, ``encoder_records``, ``llm_records``,
``embeddings``) from spans, in SQL.

One implementation serves every way spans arrive (the in-process exporter, the OTLP receiver,
an import) and the rebuild of a store: it reads a relation with the ``spans`` columns and
inserts what it derives. Batched spans (one encoder forward or one ``generate`` for N rows) are
unnested here: image ``i`` of a batch owns element ``i`` of each per-image array and elements
``i*k+1 .. (i+1)*k`` of the flattened top-k lists (see :mod:`vlmscope.conventions`).
"""

from __future__ import annotations

import duckdb

from vlmscope import conventions as cv


def _text(key: str) -> str:
    return f"attributes->>'$.\"{key}\"'"


def _typed(key: str, sql_type: str) -> str:
    return f"TRY_CAST({_text(key)} AS {sql_type})"


def _list(key: str, sql_type: str) -> str:
    return f"TRY_CAST(attributes->'$.\"{key}\"' AS {sql_type}[])"


def _role_is(role: str) -> str:
    return f"{_text(cv.VLMSCOPE_SPAN_ROLE)} = '{role}'"


def row_records_sql(source: str) -> str:
    """SQL that inserts the ``row_records`` of the row spans in ``source``."""
    return f"""
    INSERT INTO row_records
    SELECT trace_id, span_id,
        {_text(cv.VLMSCOPE_ROW_ID)},
        {_text(cv.VLMSCOPE_RUN_NAME)},
        {_text(cv.VLMSCOPE_COHORT)},
        {_text(cv.VLMSCOPE_ROW_EXPECTED)},
        {_list(cv.VLMSCOPE_ROW_OBJECTS, 'VARCHAR')},
        {_text(cv.VLMSCOPE_ROW_INSTRUCTION)},
        {_text(cv.VISION_IMAGE_SHA256)},
        start_time, duration_ms, status_code, status_message
    FROM {source}
    WHERE {_role_is(cv.ROLE_ROW)} AND {_text(cv.VLMSCOPE_ROW_ID)} IS NOT NULL
    """


def encoder_records_sql(source: str) -> str:
    """SQL that inserts one ``encoder_records`` row per image of the encoder spans in ``source``."""
    return f"""
    INSERT INTO encoder_records
    WITH s AS (
        SELECT trace_id, span_id, start_time, duration_ms, status_code,
            {_list(cv.VLMSCOPE_ROW_IDS, 'VARCHAR')} AS row_ids,
            {_list(cv.VISION_IMAGE_SHA256, 'VARCHAR')} AS image_sha256,
            coalesce({_text(cv.EMBEDDING_MODEL_NAME)},
                     {_text(cv.VISION_ENCODER_ARCHITECTURE)}) AS model,
            {_text(cv.VISION_ENCODER_ARCHITECTURE)} AS architecture,
            {_text(cv.VISION_ENCODER_CHECKPOINT_SHA256)} AS checkpoint_sha256,
            {_text(cv.VISION_ENCODER_LAYER)} AS layer,
            {_typed(cv.VISION_ENCODER_EMBEDDING_DIM, 'INTEGER')} AS embedding_dim,
            coalesce({_typed(cv.VISION_ENCODER_TOP_K, 'INTEGER')}, 0) AS k,
            {_list(cv.VISION_ENCODER_TOP_K_LABELS, 'VARCHAR')} AS labels,
            {_list(cv.VISION_ENCODER_TOP_K_SCORES, 'DOUBLE')} AS scores,
            {_list(cv.VISION_ENCODER_TOP_K_CLASS_IDS, 'BIGINT')} AS class_ids,
            {_list(cv.VISION_ENCODER_ENTROPY, 'DOUBLE')} AS entropy,
            {_list(cv.VISION_ENCODER_EMBEDDING_L2_NORM, 'DOUBLE')} AS l2_norm,
            greatest(coalesce({_typed(cv.VISION_ENCODER_BATCH_SIZE, 'INTEGER')}, 0),
                     coalesce(len(row_ids), 0), 1) AS n
        FROM {source}
        WHERE {_role_is(cv.ROLE_ENCODER)}
    ), images AS (
        SELECT *, unnest(range(n)) AS i FROM s
    )
    SELECT trace_id, span_id, i, row_ids[i + 1], image_sha256[i + 1], model, architecture,
        checkpoint_sha256, layer, embedding_dim,
        CASE WHEN k > 0 THEN list_slice(labels, i * k + 1, (i + 1) * k) END,
        CASE WHEN k > 0 THEN list_slice(scores, i * k + 1, (i + 1) * k) END,
        CASE WHEN k > 0 THEN list_slice(class_ids, i * k + 1, (i + 1) * k) END,
        entropy[i + 1], l2_norm[i + 1], start_time, duration_ms, status_code
    FROM images
    """


def llm_records_sql(source: str) -> str:
    """SQL that inserts one ``llm_records`` row per output of the LLM spans in ``source``."""
    return f"""
    INSERT INTO llm_records
    WITH s AS (
        SELECT trace_id, span_id, start_time, duration_ms, status_code,
            {_list(cv.VLMSCOPE_ROW_IDS, 'VARCHAR')} AS row_ids,
            coalesce({_text(cv.LLM_MODEL_NAME)}, {_text(cv.GEN_AI_REQUEST_MODEL)}) AS model,
            coalesce({_text(cv.GEN_AI_PROVIDER_NAME)}, {_text(cv.LLM_PROVIDER)}) AS provider,
            {_list(cv.VLMSCOPE_LLM_INSTRUCTIONS, 'VARCHAR')} AS instructions,
            {_text(cv.INPUT_VALUE)} AS instruction_one,
            {_list(cv.VLMSCOPE_LLM_OUTPUTS, 'VARCHAR')} AS outputs,
            {_text(cv.OUTPUT_VALUE)} AS output_one,
            {_list(cv.VLMSCOPE_LLM_INPUT_TOKENS, 'BIGINT')} AS input_tokens,
            {_typed(cv.GEN_AI_USAGE_INPUT_TOKENS, 'BIGINT')} AS input_tokens_one,
            {_list(cv.VLMSCOPE_LLM_OUTPUT_TOKENS, 'BIGINT')} AS output_tokens,
            {_typed(cv.GEN_AI_USAGE_OUTPUT_TOKENS, 'BIGINT')} AS output_tokens_one,
            {_text(cv.VISION_ENCODER_SPAN_ID)} AS encoder_span_id,
            greatest(coalesce(len(row_ids), 0), coalesce(len(outputs), 0), 1) AS n
        FROM {source}
        WHERE {_role_is(cv.ROLE_LLM)}
    ), outputs AS (
        SELECT *, unnest(range(n)) AS i FROM s
    )
    SELECT trace_id, span_id, i, row_ids[i + 1], model, provider,
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


def derive(con: duckdb.DuckDBPyConnection, source: str) -> None:
    """Insert the per-row records derived from the spans in relation ``source``."""
    con.execute(row_records_sql(source))
    con.execute(encoder_records_sql(source))
    con.execute(llm_records_sql(source))


def rebuild(con: duckdb.DuckDBPyConnection) -> None:
    """Recompute ``row_records``, ``encoder_records`` and ``llm_records`` from ``spans``."""
    con.execute("BEGIN TRANSACTION")
    try:
        for table in ("row_records", "encoder_records", "llm_records"):
            con.execute(f"DELETE FROM {table}")
        derive(con, "spans")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
