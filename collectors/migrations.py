"""Every schema step of a vlmscope store, as frozen SQL text.

Each migration is the SQL that version of vlmscope ran, written out in full: none is built
from live code, so a change to the code that describes the store today never changes how an
existing store was, or will be, migrated. Add a step by appending its SQL and a
:class:`Migration` to :data:`MIGRATIONS`; never edit one that has shipped (long statements
are wrapped at spaces; whitespace is all that differs from the text first shipped).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    """One schema step: a version number, a name and the SQL statements it runs."""

    version: int
    name: str
    statements: tuple[str, ...]


_V1 = (
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

_V2 = (
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

_V3 = (
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

_V4 = (
    """CREATE TABLE pipeline_row_facts (
    trace_id VARCHAR NOT NULL,
    row_id VARCHAR NOT NULL,
    row_span_id VARCHAR,
    row_index INTEGER,
    row_start TIMESTAMP_NS,
    row_ms DOUBLE,
    row_status VARCHAR,
    row_error VARCHAR,
    run_name VARCHAR,
    cohort VARCHAR,
    expected VARCHAR,
    objects VARCHAR[],
    row_instruction VARCHAR,
    row_image_sha256 VARCHAR,
    encoder_span_id VARCHAR,
    encoder_index INTEGER,
    encoder_start TIMESTAMP_NS,
    encoder_ms DOUBLE,
    encoder_status VARCHAR,
    encoder_model VARCHAR,
    checkpoint_sha256 VARCHAR,
    top_k_labels VARCHAR[],
    top_k_scores DOUBLE[],
    embedding_dim INTEGER,
    encoder_entropy DOUBLE,
    encoder_image_sha256 VARCHAR,
    llm_span_id VARCHAR,
    llm_index INTEGER,
    llm_start TIMESTAMP_NS,
    llm_ms DOUBLE,
    llm_status VARCHAR,
    llm_model VARCHAR,
    llm_instruction VARCHAR,
    output VARCHAR,
    input_tokens BIGINT,
    output_tokens BIGINT
)""",
    """CREATE TABLE pipeline_row_parts (
    trace_id VARCHAR NOT NULL,
    row_id VARCHAR NOT NULL,
    row_span_id VARCHAR,
    row_index INTEGER,
    row_start TIMESTAMP_NS,
    row_ms DOUBLE,
    row_status VARCHAR,
    row_error VARCHAR,
    run_name VARCHAR,
    cohort VARCHAR,
    expected VARCHAR,
    objects VARCHAR[],
    row_instruction VARCHAR,
    row_image_sha256 VARCHAR,
    encoder_span_id VARCHAR,
    encoder_index INTEGER,
    encoder_start TIMESTAMP_NS,
    encoder_ms DOUBLE,
    encoder_status VARCHAR,
    encoder_model VARCHAR,
    checkpoint_sha256 VARCHAR,
    top_k_labels VARCHAR[],
    top_k_scores DOUBLE[],
    embedding_dim INTEGER,
    encoder_entropy DOUBLE,
    encoder_image_sha256 VARCHAR,
    llm_span_id VARCHAR,
    llm_index INTEGER,
    llm_start TIMESTAMP_NS,
    llm_ms DOUBLE,
    llm_status VARCHAR,
    llm_model VARCHAR,
    llm_instruction VARCHAR,
    output VARCHAR,
    input_tokens BIGINT,
    output_tokens BIGINT
)""",
    """CREATE OR REPLACE TEMP TABLE _vlmscope_assembled AS WITH row_part AS (SELECT trace_id,
    row_id, span_id::VARCHAR AS row_span_id, 0::INTEGER AS row_index,
    start_time::TIMESTAMP_NS AS row_start, duration_ms::DOUBLE AS row_ms,
    status_code::VARCHAR AS row_status, status_message::VARCHAR AS row_error,
    run_name::VARCHAR AS run_name, cohort::VARCHAR AS cohort, expected::VARCHAR AS
    expected, objects::VARCHAR[] AS objects, instruction::VARCHAR AS row_instruction,
    image_sha256::VARCHAR AS row_image_sha256 FROM row_records WHERE row_id IS NOT
    NULL), encoder_part AS (SELECT trace_id, row_id, unnest(picked) FROM (SELECT
    trace_id, row_id, arg_min(struct_pack(encoder_span_id := span_id::VARCHAR,
    encoder_index := record_index::INTEGER, encoder_start := start_time::TIMESTAMP_NS,
    encoder_ms := duration_ms::DOUBLE, encoder_status := status_code::VARCHAR,
    encoder_model := model::VARCHAR, checkpoint_sha256 := checkpoint_sha256::VARCHAR,
    top_k_labels := top_k_labels::VARCHAR[], top_k_scores := top_k_scores::DOUBLE[],
    embedding_dim := embedding_dim::INTEGER, encoder_entropy := entropy::DOUBLE,
    encoder_image_sha256 := image_sha256::VARCHAR), struct_pack(a := start_time IS
    NULL, b := -epoch_ns(start_time), c := span_id, d := record_index)) AS picked FROM
    encoder_records WHERE row_id IS NOT NULL GROUP BY trace_id, row_id)), llm_part AS
    (SELECT trace_id, row_id, unnest(picked) FROM (SELECT trace_id, row_id,
    arg_min(struct_pack(llm_span_id := span_id::VARCHAR, llm_index :=
    record_index::INTEGER, llm_start := start_time::TIMESTAMP_NS, llm_ms :=
    duration_ms::DOUBLE, llm_status := status_code::VARCHAR, llm_model :=
    model::VARCHAR, llm_instruction := instruction::VARCHAR, output :=
    output::VARCHAR, input_tokens := input_tokens::BIGINT, output_tokens :=
    output_tokens::BIGINT), struct_pack(a := start_time IS NULL, b :=
    -epoch_ns(start_time), c := span_id, d := record_index)) AS picked FROM
    llm_records WHERE row_id IS NOT NULL GROUP BY trace_id, row_id)) SELECT trace_id,
    row_id, row_part.row_span_id, row_part.row_index, row_part.row_start,
    row_part.row_ms, row_part.row_status, row_part.row_error, row_part.run_name,
    row_part.cohort, row_part.expected, row_part.objects, row_part.row_instruction,
    row_part.row_image_sha256, encoder_part.encoder_span_id,
    encoder_part.encoder_index, encoder_part.encoder_start, encoder_part.encoder_ms,
    encoder_part.encoder_status, encoder_part.encoder_model,
    encoder_part.checkpoint_sha256, encoder_part.top_k_labels,
    encoder_part.top_k_scores, encoder_part.embedding_dim,
    encoder_part.encoder_entropy, encoder_part.encoder_image_sha256,
    llm_part.llm_span_id, llm_part.llm_index, llm_part.llm_start, llm_part.llm_ms,
    llm_part.llm_status, llm_part.llm_model, llm_part.llm_instruction,
    llm_part.output, llm_part.input_tokens, llm_part.output_tokens FROM row_part FULL
    JOIN encoder_part USING (trace_id, row_id) FULL JOIN llm_part USING (trace_id,
    row_id)""",
    """INSERT INTO pipeline_row_facts SELECT * FROM _vlmscope_assembled WHERE row_span_id IS
    NOT NULL""",
    """INSERT INTO pipeline_row_parts SELECT * FROM _vlmscope_assembled WHERE row_span_id IS
    NULL""",
    """DROP TABLE _vlmscope_assembled""",
    """
    CREATE OR REPLACE VIEW pipeline_rows AS
    SELECT
    row_id, trace_id, row_span_id AS span_id, run_name AS run, cohort,
    coalesce(row_image_sha256, encoder_image_sha256) AS image_sha256, expected,
        objects,
    encoder_model, checkpoint_sha256, top_k_labels, top_k_scores, embedding_dim,
    encoder_entropy, llm_model, coalesce(llm_instruction, row_instruction) AS
        instruction,
    output, input_tokens, output_tokens, encoder_ms, llm_ms, row_ms,
    CASE WHEN 'ERROR' IN (row_status, encoder_status, llm_status) THEN 'ERROR'
         ELSE 'OK' END AS status,
    row_error AS error, encoder_span_id, llm_span_id, row_start AS start_time FROM
        pipeline_row_facts f
    WHERE NOT EXISTS (SELECT 1 FROM pipeline_row_parts p
                      WHERE p.trace_id = f.trace_id AND p.row_id = f.row_id)
    UNION ALL
    SELECT
    row_id, trace_id, row_span_id AS span_id, run_name AS run, cohort,
    coalesce(row_image_sha256, encoder_image_sha256) AS image_sha256, expected,
        objects,
    encoder_model, checkpoint_sha256, top_k_labels, top_k_scores, embedding_dim,
    encoder_entropy, llm_model, coalesce(llm_instruction, row_instruction) AS
        instruction,
    output, input_tokens, output_tokens, encoder_ms, llm_ms, row_ms,
    CASE WHEN 'ERROR' IN (row_status, encoder_status, llm_status) THEN 'ERROR'
         ELSE 'OK' END AS status,
    row_error AS error, encoder_span_id, llm_span_id, row_start AS start_time FROM
        (SELECT f.trace_id, f.row_id, CASE WHEN (p.row_span_id IS NOT NULL AND
        (f.row_span_id IS NULL OR coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') >
        coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start,
        TIMESTAMP_NS '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01')
        AND (p.row_span_id < f.row_span_id OR (p.row_span_id = f.row_span_id AND
        p.row_index <= f.row_index))))) THEN p.row_span_id ELSE f.row_span_id END AS
        row_span_id, CASE WHEN (p.row_span_id IS NOT NULL AND (f.row_span_id IS NULL
        OR coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.row_start,
        TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
        '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND
        (p.row_span_id < f.row_span_id OR (p.row_span_id = f.row_span_id AND
        p.row_index <= f.row_index))))) THEN p.row_index ELSE f.row_index END AS
        row_index, CASE WHEN (p.row_span_id IS NOT NULL AND (f.row_span_id IS NULL OR
        coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.row_start,
        TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
        '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND
        (p.row_span_id < f.row_span_id OR (p.row_span_id = f.row_span_id AND
        p.row_index <= f.row_index))))) THEN p.row_start ELSE f.row_start END AS
        row_start, CASE WHEN (p.row_span_id IS NOT NULL AND (f.row_span_id IS NULL OR
        coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.row_start,
        TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
        '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND
        (p.row_span_id < f.row_span_id OR (p.row_span_id = f.row_span_id AND
        p.row_index <= f.row_index))))) THEN p.row_ms ELSE f.row_ms END AS row_ms,
        CASE WHEN (p.row_span_id IS NOT NULL AND (f.row_span_id IS NULL OR
        coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.row_start,
        TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
        '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND
        (p.row_span_id < f.row_span_id OR (p.row_span_id = f.row_span_id AND
        p.row_index <= f.row_index))))) THEN p.row_status ELSE f.row_status END AS
        row_status, CASE WHEN (p.row_span_id IS NOT NULL AND (f.row_span_id IS NULL OR
        coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.row_start,
        TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
        '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND
        (p.row_span_id < f.row_span_id OR (p.row_span_id = f.row_span_id AND
        p.row_index <= f.row_index))))) THEN p.row_error ELSE f.row_error END AS
        row_error, CASE WHEN (p.row_span_id IS NOT NULL AND (f.row_span_id IS NULL OR
        coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.row_start,
        TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
        '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND
        (p.row_span_id < f.row_span_id OR (p.row_span_id = f.row_span_id AND
        p.row_index <= f.row_index))))) THEN p.run_name ELSE f.run_name END AS
        run_name, CASE WHEN (p.row_span_id IS NOT NULL AND (f.row_span_id IS NULL OR
        coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.row_start,
        TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
        '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND
        (p.row_span_id < f.row_span_id OR (p.row_span_id = f.row_span_id AND
        p.row_index <= f.row_index))))) THEN p.cohort ELSE f.cohort END AS cohort,
        CASE WHEN (p.row_span_id IS NOT NULL AND (f.row_span_id IS NULL OR
        coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.row_start,
        TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
        '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND
        (p.row_span_id < f.row_span_id OR (p.row_span_id = f.row_span_id AND
        p.row_index <= f.row_index))))) THEN p.expected ELSE f.expected END AS
        expected, CASE WHEN (p.row_span_id IS NOT NULL AND (f.row_span_id IS NULL OR
        coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.row_start,
        TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
        '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND
        (p.row_span_id < f.row_span_id OR (p.row_span_id = f.row_span_id AND
        p.row_index <= f.row_index))))) THEN p.objects ELSE f.objects END AS objects,
        CASE WHEN (p.row_span_id IS NOT NULL AND (f.row_span_id IS NULL OR
        coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.row_start,
        TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
        '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND
        (p.row_span_id < f.row_span_id OR (p.row_span_id = f.row_span_id AND
        p.row_index <= f.row_index))))) THEN p.row_instruction ELSE f.row_instruction
        END AS row_instruction, CASE WHEN (p.row_span_id IS NOT NULL AND
        (f.row_span_id IS NULL OR coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') >
        coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start,
        TIMESTAMP_NS '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01')
        AND (p.row_span_id < f.row_span_id OR (p.row_span_id = f.row_span_id AND
        p.row_index <= f.row_index))))) THEN p.row_image_sha256 ELSE
        f.row_image_sha256 END AS row_image_sha256, CASE WHEN (p.encoder_span_id IS
        NOT NULL AND (f.encoder_span_id IS NULL OR coalesce(p.encoder_start,
        TIMESTAMP_NS '1678-01-01') > coalesce(f.encoder_start, TIMESTAMP_NS
        '1678-01-01') OR (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
        f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
        p.encoder_index <= f.encoder_index))))) THEN p.encoder_span_id ELSE
        f.encoder_span_id END AS encoder_span_id, CASE WHEN (p.encoder_span_id IS NOT
        NULL AND (f.encoder_span_id IS NULL OR coalesce(p.encoder_start, TIMESTAMP_NS
        '1678-01-01') > coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
        f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
        p.encoder_index <= f.encoder_index))))) THEN p.encoder_index ELSE
        f.encoder_index END AS encoder_index, CASE WHEN (p.encoder_span_id IS NOT NULL
        AND (f.encoder_span_id IS NULL OR coalesce(p.encoder_start, TIMESTAMP_NS
        '1678-01-01') > coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
        f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
        p.encoder_index <= f.encoder_index))))) THEN p.encoder_start ELSE
        f.encoder_start END AS encoder_start, CASE WHEN (p.encoder_span_id IS NOT NULL
        AND (f.encoder_span_id IS NULL OR coalesce(p.encoder_start, TIMESTAMP_NS
        '1678-01-01') > coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
        f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
        p.encoder_index <= f.encoder_index))))) THEN p.encoder_ms ELSE f.encoder_ms
        END AS encoder_ms, CASE WHEN (p.encoder_span_id IS NOT NULL AND
        (f.encoder_span_id IS NULL OR coalesce(p.encoder_start, TIMESTAMP_NS
        '1678-01-01') > coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
        f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
        p.encoder_index <= f.encoder_index))))) THEN p.encoder_status ELSE
        f.encoder_status END AS encoder_status, CASE WHEN (p.encoder_span_id IS NOT
        NULL AND (f.encoder_span_id IS NULL OR coalesce(p.encoder_start, TIMESTAMP_NS
        '1678-01-01') > coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
        f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
        p.encoder_index <= f.encoder_index))))) THEN p.encoder_model ELSE
        f.encoder_model END AS encoder_model, CASE WHEN (p.encoder_span_id IS NOT NULL
        AND (f.encoder_span_id IS NULL OR coalesce(p.encoder_start, TIMESTAMP_NS
        '1678-01-01') > coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
        f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
        p.encoder_index <= f.encoder_index))))) THEN p.checkpoint_sha256 ELSE
        f.checkpoint_sha256 END AS checkpoint_sha256, CASE WHEN (p.encoder_span_id IS
        NOT NULL AND (f.encoder_span_id IS NULL OR coalesce(p.encoder_start,
        TIMESTAMP_NS '1678-01-01') > coalesce(f.encoder_start, TIMESTAMP_NS
        '1678-01-01') OR (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
        f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
        p.encoder_index <= f.encoder_index))))) THEN p.top_k_labels ELSE
        f.top_k_labels END AS top_k_labels, CASE WHEN (p.encoder_span_id IS NOT NULL
        AND (f.encoder_span_id IS NULL OR coalesce(p.encoder_start, TIMESTAMP_NS
        '1678-01-01') > coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
        f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
        p.encoder_index <= f.encoder_index))))) THEN p.top_k_scores ELSE
        f.top_k_scores END AS top_k_scores, CASE WHEN (p.encoder_span_id IS NOT NULL
        AND (f.encoder_span_id IS NULL OR coalesce(p.encoder_start, TIMESTAMP_NS
        '1678-01-01') > coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
        f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
        p.encoder_index <= f.encoder_index))))) THEN p.embedding_dim ELSE
        f.embedding_dim END AS embedding_dim, CASE WHEN (p.encoder_span_id IS NOT NULL
        AND (f.encoder_span_id IS NULL OR coalesce(p.encoder_start, TIMESTAMP_NS
        '1678-01-01') > coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
        f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
        p.encoder_index <= f.encoder_index))))) THEN p.encoder_entropy ELSE
        f.encoder_entropy END AS encoder_entropy, CASE WHEN (p.encoder_span_id IS NOT
        NULL AND (f.encoder_span_id IS NULL OR coalesce(p.encoder_start, TIMESTAMP_NS
        '1678-01-01') > coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
        f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
        p.encoder_index <= f.encoder_index))))) THEN p.encoder_image_sha256 ELSE
        f.encoder_image_sha256 END AS encoder_image_sha256, CASE WHEN (p.llm_span_id
        IS NOT NULL AND (f.llm_span_id IS NULL OR coalesce(p.llm_start, TIMESTAMP_NS
        '1678-01-01') > coalesce(f.llm_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.llm_start, TIMESTAMP_NS '1678-01-01') = coalesce(f.llm_start,
        TIMESTAMP_NS '1678-01-01') AND (p.llm_span_id < f.llm_span_id OR
        (p.llm_span_id = f.llm_span_id AND p.llm_index <= f.llm_index))))) THEN
        p.llm_span_id ELSE f.llm_span_id END AS llm_span_id, CASE WHEN (p.llm_span_id
        IS NOT NULL AND (f.llm_span_id IS NULL OR coalesce(p.llm_start, TIMESTAMP_NS
        '1678-01-01') > coalesce(f.llm_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.llm_start, TIMESTAMP_NS '1678-01-01') = coalesce(f.llm_start,
        TIMESTAMP_NS '1678-01-01') AND (p.llm_span_id < f.llm_span_id OR
        (p.llm_span_id = f.llm_span_id AND p.llm_index <= f.llm_index))))) THEN
        p.llm_index ELSE f.llm_index END AS llm_index, CASE WHEN (p.llm_span_id IS NOT
        NULL AND (f.llm_span_id IS NULL OR coalesce(p.llm_start, TIMESTAMP_NS
        '1678-01-01') > coalesce(f.llm_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.llm_start, TIMESTAMP_NS '1678-01-01') = coalesce(f.llm_start,
        TIMESTAMP_NS '1678-01-01') AND (p.llm_span_id < f.llm_span_id OR
        (p.llm_span_id = f.llm_span_id AND p.llm_index <= f.llm_index))))) THEN
        p.llm_start ELSE f.llm_start END AS llm_start, CASE WHEN (p.llm_span_id IS NOT
        NULL AND (f.llm_span_id IS NULL OR coalesce(p.llm_start, TIMESTAMP_NS
        '1678-01-01') > coalesce(f.llm_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.llm_start, TIMESTAMP_NS '1678-01-01') = coalesce(f.llm_start,
        TIMESTAMP_NS '1678-01-01') AND (p.llm_span_id < f.llm_span_id OR
        (p.llm_span_id = f.llm_span_id AND p.llm_index <= f.llm_index))))) THEN
        p.llm_ms ELSE f.llm_ms END AS llm_ms, CASE WHEN (p.llm_span_id IS NOT NULL AND
        (f.llm_span_id IS NULL OR coalesce(p.llm_start, TIMESTAMP_NS '1678-01-01') >
        coalesce(f.llm_start, TIMESTAMP_NS '1678-01-01') OR (coalesce(p.llm_start,
        TIMESTAMP_NS '1678-01-01') = coalesce(f.llm_start, TIMESTAMP_NS '1678-01-01')
        AND (p.llm_span_id < f.llm_span_id OR (p.llm_span_id = f.llm_span_id AND
        p.llm_index <= f.llm_index))))) THEN p.llm_status ELSE f.llm_status END AS
        llm_status, CASE WHEN (p.llm_span_id IS NOT NULL AND (f.llm_span_id IS NULL OR
        coalesce(p.llm_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.llm_start,
        TIMESTAMP_NS '1678-01-01') OR (coalesce(p.llm_start, TIMESTAMP_NS
        '1678-01-01') = coalesce(f.llm_start, TIMESTAMP_NS '1678-01-01') AND
        (p.llm_span_id < f.llm_span_id OR (p.llm_span_id = f.llm_span_id AND
        p.llm_index <= f.llm_index))))) THEN p.llm_model ELSE f.llm_model END AS
        llm_model, CASE WHEN (p.llm_span_id IS NOT NULL AND (f.llm_span_id IS NULL OR
        coalesce(p.llm_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.llm_start,
        TIMESTAMP_NS '1678-01-01') OR (coalesce(p.llm_start, TIMESTAMP_NS
        '1678-01-01') = coalesce(f.llm_start, TIMESTAMP_NS '1678-01-01') AND
        (p.llm_span_id < f.llm_span_id OR (p.llm_span_id = f.llm_span_id AND
        p.llm_index <= f.llm_index))))) THEN p.llm_instruction ELSE f.llm_instruction
        END AS llm_instruction, CASE WHEN (p.llm_span_id IS NOT NULL AND
        (f.llm_span_id IS NULL OR coalesce(p.llm_start, TIMESTAMP_NS '1678-01-01') >
        coalesce(f.llm_start, TIMESTAMP_NS '1678-01-01') OR (coalesce(p.llm_start,
        TIMESTAMP_NS '1678-01-01') = coalesce(f.llm_start, TIMESTAMP_NS '1678-01-01')
        AND (p.llm_span_id < f.llm_span_id OR (p.llm_span_id = f.llm_span_id AND
        p.llm_index <= f.llm_index))))) THEN p.output ELSE f.output END AS output,
        CASE WHEN (p.llm_span_id IS NOT NULL AND (f.llm_span_id IS NULL OR
        coalesce(p.llm_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.llm_start,
        TIMESTAMP_NS '1678-01-01') OR (coalesce(p.llm_start, TIMESTAMP_NS
        '1678-01-01') = coalesce(f.llm_start, TIMESTAMP_NS '1678-01-01') AND
        (p.llm_span_id < f.llm_span_id OR (p.llm_span_id = f.llm_span_id AND
        p.llm_index <= f.llm_index))))) THEN p.input_tokens ELSE f.input_tokens END AS
        input_tokens, CASE WHEN (p.llm_span_id IS NOT NULL AND (f.llm_span_id IS NULL
        OR coalesce(p.llm_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.llm_start,
        TIMESTAMP_NS '1678-01-01') OR (coalesce(p.llm_start, TIMESTAMP_NS
        '1678-01-01') = coalesce(f.llm_start, TIMESTAMP_NS '1678-01-01') AND
        (p.llm_span_id < f.llm_span_id OR (p.llm_span_id = f.llm_span_id AND
        p.llm_index <= f.llm_index))))) THEN p.output_tokens ELSE f.output_tokens END
        AS output_tokens FROM pipeline_row_facts f
                           JOIN pipeline_row_parts p USING (trace_id, row_id))
    """,
)

_V5 = (
    """CREATE TABLE _vlmscope_spans_v5 (
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
        attributes VARCHAR USING COMPRESSION zstd,
        events VARCHAR USING COMPRESSION zstd,
        links VARCHAR USING COMPRESSION zstd,
        resource VARCHAR USING COMPRESSION zstd,
        dropped_attributes INTEGER,
        dropped_events INTEGER,
        dropped_links INTEGER
)""",
    """INSERT INTO _vlmscope_spans_v5 SELECT * FROM spans""",
    """DROP TABLE spans""",
    """ALTER TABLE _vlmscope_spans_v5 RENAME TO spans""",
    """CREATE TABLE _vlmscope_evaluations_v5 (
run_id VARCHAR NOT NULL,
        row_id VARCHAR USING COMPRESSION zstd,
        trace_id VARCHAR USING COMPRESSION zstd,
        span_id VARCHAR USING COMPRESSION zstd,
        evaluator VARCHAR NOT NULL,
        score DOUBLE,
        passed BOOLEAN,
        label VARCHAR,
        explanation VARCHAR USING COMPRESSION zstd,
        metadata VARCHAR USING COMPRESSION zstd,
        annotator_kind VARCHAR NOT NULL
)""",
    """INSERT INTO _vlmscope_evaluations_v5 SELECT * FROM evaluations""",
    """DROP TABLE evaluations""",
    """ALTER TABLE _vlmscope_evaluations_v5 RENAME TO evaluations""",
)

_V6 = (
    """ALTER TABLE eval_runs ADD COLUMN run_name VARCHAR""",
)

_V7 = (
    """ALTER TABLE row_records ADD COLUMN instruction_kind VARCHAR""",
    """ALTER TABLE row_records ADD COLUMN batch_size INTEGER""",
    """ALTER TABLE encoder_records ADD COLUMN multi_label BOOLEAN""",
    """ALTER TABLE encoder_records ADD COLUMN batch_size INTEGER""",
    """ALTER TABLE llm_records ADD COLUMN instruction_kind VARCHAR""",
    """ALTER TABLE llm_records ADD COLUMN batch_size INTEGER""",
    """DROP VIEW pipeline_rows""",
    """CREATE TABLE _vlmscope_pipeline_row_facts_v7 (
    trace_id VARCHAR NOT NULL,
    row_id VARCHAR NOT NULL,
    row_span_id VARCHAR,
    row_index INTEGER,
    row_start TIMESTAMP_NS,
    row_ms DOUBLE,
    row_status VARCHAR,
    row_error VARCHAR,
    run_name VARCHAR,
    cohort VARCHAR,
    expected VARCHAR,
    objects VARCHAR[],
    row_instruction VARCHAR,
    row_image_sha256 VARCHAR,
    row_instruction_kind VARCHAR,
    row_batch_size INTEGER,
    encoder_span_id VARCHAR,
    encoder_index INTEGER,
    encoder_start TIMESTAMP_NS,
    encoder_ms DOUBLE,
    encoder_status VARCHAR,
    encoder_model VARCHAR,
    checkpoint_sha256 VARCHAR,
    top_k_labels VARCHAR[],
    top_k_scores DOUBLE[],
    embedding_dim INTEGER,
    encoder_entropy DOUBLE,
    encoder_image_sha256 VARCHAR,
    encoder_multi_label BOOLEAN,
    encoder_batch_size INTEGER,
    llm_span_id VARCHAR,
    llm_index INTEGER,
    llm_start TIMESTAMP_NS,
    llm_ms DOUBLE,
    llm_status VARCHAR,
    llm_model VARCHAR,
    llm_instruction VARCHAR,
    output VARCHAR,
    input_tokens BIGINT,
    output_tokens BIGINT,
    llm_instruction_kind VARCHAR,
    llm_batch_size INTEGER
)""",
    """INSERT INTO _vlmscope_pipeline_row_facts_v7 BY NAME SELECT * FROM pipeline_row_facts""",
    """DROP TABLE pipeline_row_facts""",
    """ALTER TABLE _vlmscope_pipeline_row_facts_v7 RENAME TO pipeline_row_facts""",
    """CREATE TABLE _vlmscope_pipeline_row_parts_v7 (
    trace_id VARCHAR NOT NULL,
    row_id VARCHAR NOT NULL,
    row_span_id VARCHAR,
    row_index INTEGER,
    row_start TIMESTAMP_NS,
    row_ms DOUBLE,
    row_status VARCHAR,
    row_error VARCHAR,
    run_name VARCHAR,
    cohort VARCHAR,
    expected VARCHAR,
    objects VARCHAR[],
    row_instruction VARCHAR,
    row_image_sha256 VARCHAR,
    row_instruction_kind VARCHAR,
    row_batch_size INTEGER,
    encoder_span_id VARCHAR,
    encoder_index INTEGER,
    encoder_start TIMESTAMP_NS,
    encoder_ms DOUBLE,
    encoder_status VARCHAR,
    encoder_model VARCHAR,
    checkpoint_sha256 VARCHAR,
    top_k_labels VARCHAR[],
    top_k_scores DOUBLE[],
    embedding_dim INTEGER,
    encoder_entropy DOUBLE,
    encoder_image_sha256 VARCHAR,
    encoder_multi_label BOOLEAN,
    encoder_batch_size INTEGER,
    llm_span_id VARCHAR,
    llm_index INTEGER,
    llm_start TIMESTAMP_NS,
    llm_ms DOUBLE,
    llm_status VARCHAR,
    llm_model VARCHAR,
    llm_instruction VARCHAR,
    output VARCHAR,
    input_tokens BIGINT,
    output_tokens BIGINT,
    llm_instruction_kind VARCHAR,
    llm_batch_size INTEGER
)""",
    """INSERT INTO _vlmscope_pipeline_row_parts_v7 BY NAME SELECT * FROM pipeline_row_parts""",
    """DROP TABLE pipeline_row_parts""",
    """ALTER TABLE _vlmscope_pipeline_row_parts_v7 RENAME TO pipeline_row_parts""",
    """
    CREATE VIEW pipeline_rows AS
    SELECT
    row_id, trace_id, row_span_id AS span_id, run_name AS run, cohort,
    coalesce(row_image_sha256, encoder_image_sha256) AS image_sha256, expected,
        objects,
    encoder_model, checkpoint_sha256, top_k_labels, top_k_scores, embedding_dim,
    encoder_entropy, llm_model, coalesce(llm_instruction, row_instruction) AS
        instruction,
    output, input_tokens, output_tokens, encoder_ms, llm_ms, row_ms,
    CASE WHEN 'ERROR' IN (row_status, encoder_status, llm_status) THEN 'ERROR'
         ELSE 'OK' END AS status,
    row_error AS error, encoder_span_id, llm_span_id, row_start AS start_time,
    encoder_multi_label, coalesce(row_instruction_kind, llm_instruction_kind) AS
        instruction_kind,
    coalesce(row_batch_size, encoder_batch_size, llm_batch_size) AS batch_size,
    encoder_ms / greatest(coalesce(encoder_batch_size, 1), 1) AS encoder_share_ms,
    llm_ms / greatest(coalesce(llm_batch_size, 1), 1) AS llm_share_ms FROM
        pipeline_row_facts f
    WHERE NOT EXISTS (SELECT 1 FROM pipeline_row_parts p
                      WHERE p.trace_id = f.trace_id AND p.row_id = f.row_id)
    UNION ALL
    SELECT
    row_id, trace_id, row_span_id AS span_id, run_name AS run, cohort,
    coalesce(row_image_sha256, encoder_image_sha256) AS image_sha256, expected,
        objects,
    encoder_model, checkpoint_sha256, top_k_labels, top_k_scores, embedding_dim,
    encoder_entropy, llm_model, coalesce(llm_instruction, row_instruction) AS
        instruction,
    output, input_tokens, output_tokens, encoder_ms, llm_ms, row_ms,
    CASE WHEN 'ERROR' IN (row_status, encoder_status, llm_status) THEN 'ERROR'
         ELSE 'OK' END AS status,
    row_error AS error, encoder_span_id, llm_span_id, row_start AS start_time,
    encoder_multi_label, coalesce(row_instruction_kind, llm_instruction_kind) AS
        instruction_kind,
    coalesce(row_batch_size, encoder_batch_size, llm_batch_size) AS batch_size,
    encoder_ms / greatest(coalesce(encoder_batch_size, 1), 1) AS encoder_share_ms,
    llm_ms / greatest(coalesce(llm_batch_size, 1), 1) AS llm_share_ms FROM (SELECT
        f.trace_id, f.row_id, CASE WHEN (p.row_span_id IS NOT NULL AND (f.row_span_id
        IS NULL OR coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') >
        coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start,
        TIMESTAMP_NS '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01')
        AND (p.row_span_id < f.row_span_id OR (p.row_span_id = f.row_span_id AND
        p.row_index <= f.row_index))))) THEN p.row_span_id ELSE f.row_span_id END AS
        row_span_id, CASE WHEN (p.row_span_id IS NOT NULL AND (f.row_span_id IS NULL
        OR coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.row_start,
        TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
        '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND
        (p.row_span_id < f.row_span_id OR (p.row_span_id = f.row_span_id AND
        p.row_index <= f.row_index))))) THEN p.row_index ELSE f.row_index END AS
        row_index, CASE WHEN (p.row_span_id IS NOT NULL AND (f.row_span_id IS NULL OR
        coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.row_start,
        TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
        '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND
        (p.row_span_id < f.row_span_id OR (p.row_span_id = f.row_span_id AND
        p.row_index <= f.row_index))))) THEN p.row_start ELSE f.row_start END AS
        row_start, CASE WHEN (p.row_span_id IS NOT NULL AND (f.row_span_id IS NULL OR
        coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.row_start,
        TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
        '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND
        (p.row_span_id < f.row_span_id OR (p.row_span_id = f.row_span_id AND
        p.row_index <= f.row_index))))) THEN p.row_ms ELSE f.row_ms END AS row_ms,
        CASE WHEN (p.row_span_id IS NOT NULL AND (f.row_span_id IS NULL OR
        coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.row_start,
        TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
        '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND
        (p.row_span_id < f.row_span_id OR (p.row_span_id = f.row_span_id AND
        p.row_index <= f.row_index))))) THEN p.row_status ELSE f.row_status END AS
        row_status, CASE WHEN (p.row_span_id IS NOT NULL AND (f.row_span_id IS NULL OR
        coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.row_start,
        TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
        '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND
        (p.row_span_id < f.row_span_id OR (p.row_span_id = f.row_span_id AND
        p.row_index <= f.row_index))))) THEN p.row_error ELSE f.row_error END AS
        row_error, CASE WHEN (p.row_span_id IS NOT NULL AND (f.row_span_id IS NULL OR
        coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.row_start,
        TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
        '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND
        (p.row_span_id < f.row_span_id OR (p.row_span_id = f.row_span_id AND
        p.row_index <= f.row_index))))) THEN p.run_name ELSE f.run_name END AS
        run_name, CASE WHEN (p.row_span_id IS NOT NULL AND (f.row_span_id IS NULL OR
        coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.row_start,
        TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
        '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND
        (p.row_span_id < f.row_span_id OR (p.row_span_id = f.row_span_id AND
        p.row_index <= f.row_index))))) THEN p.cohort ELSE f.cohort END AS cohort,
        CASE WHEN (p.row_span_id IS NOT NULL AND (f.row_span_id IS NULL OR
        coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.row_start,
        TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
        '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND
        (p.row_span_id < f.row_span_id OR (p.row_span_id = f.row_span_id AND
        p.row_index <= f.row_index))))) THEN p.expected ELSE f.expected END AS
        expected, CASE WHEN (p.row_span_id IS NOT NULL AND (f.row_span_id IS NULL OR
        coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.row_start,
        TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
        '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND
        (p.row_span_id < f.row_span_id OR (p.row_span_id = f.row_span_id AND
        p.row_index <= f.row_index))))) THEN p.objects ELSE f.objects END AS objects,
        CASE WHEN (p.row_span_id IS NOT NULL AND (f.row_span_id IS NULL OR
        coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.row_start,
        TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
        '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND
        (p.row_span_id < f.row_span_id OR (p.row_span_id = f.row_span_id AND
        p.row_index <= f.row_index))))) THEN p.row_instruction ELSE f.row_instruction
        END AS row_instruction, CASE WHEN (p.row_span_id IS NOT NULL AND
        (f.row_span_id IS NULL OR coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') >
        coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start,
        TIMESTAMP_NS '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01')
        AND (p.row_span_id < f.row_span_id OR (p.row_span_id = f.row_span_id AND
        p.row_index <= f.row_index))))) THEN p.row_image_sha256 ELSE
        f.row_image_sha256 END AS row_image_sha256, CASE WHEN (p.row_span_id IS NOT
        NULL AND (f.row_span_id IS NULL OR coalesce(p.row_start, TIMESTAMP_NS
        '1678-01-01') > coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') = coalesce(f.row_start,
        TIMESTAMP_NS '1678-01-01') AND (p.row_span_id < f.row_span_id OR
        (p.row_span_id = f.row_span_id AND p.row_index <= f.row_index))))) THEN
        p.row_instruction_kind ELSE f.row_instruction_kind END AS
        row_instruction_kind, CASE WHEN (p.row_span_id IS NOT NULL AND (f.row_span_id
        IS NULL OR coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') >
        coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start,
        TIMESTAMP_NS '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01')
        AND (p.row_span_id < f.row_span_id OR (p.row_span_id = f.row_span_id AND
        p.row_index <= f.row_index))))) THEN p.row_batch_size ELSE f.row_batch_size
        END AS row_batch_size, CASE WHEN (p.encoder_span_id IS NOT NULL AND
        (f.encoder_span_id IS NULL OR coalesce(p.encoder_start, TIMESTAMP_NS
        '1678-01-01') > coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
        f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
        p.encoder_index <= f.encoder_index))))) THEN p.encoder_span_id ELSE
        f.encoder_span_id END AS encoder_span_id, CASE WHEN (p.encoder_span_id IS NOT
        NULL AND (f.encoder_span_id IS NULL OR coalesce(p.encoder_start, TIMESTAMP_NS
        '1678-01-01') > coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
        f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
        p.encoder_index <= f.encoder_index))))) THEN p.encoder_index ELSE
        f.encoder_index END AS encoder_index, CASE WHEN (p.encoder_span_id IS NOT NULL
        AND (f.encoder_span_id IS NULL OR coalesce(p.encoder_start, TIMESTAMP_NS
        '1678-01-01') > coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
        f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
        p.encoder_index <= f.encoder_index))))) THEN p.encoder_start ELSE
        f.encoder_start END AS encoder_start, CASE WHEN (p.encoder_span_id IS NOT NULL
        AND (f.encoder_span_id IS NULL OR coalesce(p.encoder_start, TIMESTAMP_NS
        '1678-01-01') > coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
        f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
        p.encoder_index <= f.encoder_index))))) THEN p.encoder_ms ELSE f.encoder_ms
        END AS encoder_ms, CASE WHEN (p.encoder_span_id IS NOT NULL AND
        (f.encoder_span_id IS NULL OR coalesce(p.encoder_start, TIMESTAMP_NS
        '1678-01-01') > coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
        f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
        p.encoder_index <= f.encoder_index))))) THEN p.encoder_status ELSE
        f.encoder_status END AS encoder_status, CASE WHEN (p.encoder_span_id IS NOT
        NULL AND (f.encoder_span_id IS NULL OR coalesce(p.encoder_start, TIMESTAMP_NS
        '1678-01-01') > coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
        f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
        p.encoder_index <= f.encoder_index))))) THEN p.encoder_model ELSE
        f.encoder_model END AS encoder_model, CASE WHEN (p.encoder_span_id IS NOT NULL
        AND (f.encoder_span_id IS NULL OR coalesce(p.encoder_start, TIMESTAMP_NS
        '1678-01-01') > coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
        f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
        p.encoder_index <= f.encoder_index))))) THEN p.checkpoint_sha256 ELSE
        f.checkpoint_sha256 END AS checkpoint_sha256, CASE WHEN (p.encoder_span_id IS
        NOT NULL AND (f.encoder_span_id IS NULL OR coalesce(p.encoder_start,
        TIMESTAMP_NS '1678-01-01') > coalesce(f.encoder_start, TIMESTAMP_NS
        '1678-01-01') OR (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
        f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
        p.encoder_index <= f.encoder_index))))) THEN p.top_k_labels ELSE
        f.top_k_labels END AS top_k_labels, CASE WHEN (p.encoder_span_id IS NOT NULL
        AND (f.encoder_span_id IS NULL OR coalesce(p.encoder_start, TIMESTAMP_NS
        '1678-01-01') > coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
        f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
        p.encoder_index <= f.encoder_index))))) THEN p.top_k_scores ELSE
        f.top_k_scores END AS top_k_scores, CASE WHEN (p.encoder_span_id IS NOT NULL
        AND (f.encoder_span_id IS NULL OR coalesce(p.encoder_start, TIMESTAMP_NS
        '1678-01-01') > coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
        f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
        p.encoder_index <= f.encoder_index))))) THEN p.embedding_dim ELSE
        f.embedding_dim END AS embedding_dim, CASE WHEN (p.encoder_span_id IS NOT NULL
        AND (f.encoder_span_id IS NULL OR coalesce(p.encoder_start, TIMESTAMP_NS
        '1678-01-01') > coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
        f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
        p.encoder_index <= f.encoder_index))))) THEN p.encoder_entropy ELSE
        f.encoder_entropy END AS encoder_entropy, CASE WHEN (p.encoder_span_id IS NOT
        NULL AND (f.encoder_span_id IS NULL OR coalesce(p.encoder_start, TIMESTAMP_NS
        '1678-01-01') > coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
        f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
        p.encoder_index <= f.encoder_index))))) THEN p.encoder_image_sha256 ELSE
        f.encoder_image_sha256 END AS encoder_image_sha256, CASE WHEN
        (p.encoder_span_id IS NOT NULL AND (f.encoder_span_id IS NULL OR
        coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') >
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
        f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
        p.encoder_index <= f.encoder_index))))) THEN p.encoder_multi_label ELSE
        f.encoder_multi_label END AS encoder_multi_label, CASE WHEN (p.encoder_span_id
        IS NOT NULL AND (f.encoder_span_id IS NULL OR coalesce(p.encoder_start,
        TIMESTAMP_NS '1678-01-01') > coalesce(f.encoder_start, TIMESTAMP_NS
        '1678-01-01') OR (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
        f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
        p.encoder_index <= f.encoder_index))))) THEN p.encoder_batch_size ELSE
        f.encoder_batch_size END AS encoder_batch_size, CASE WHEN (p.llm_span_id IS
        NOT NULL AND (f.llm_span_id IS NULL OR coalesce(p.llm_start, TIMESTAMP_NS
        '1678-01-01') > coalesce(f.llm_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.llm_start, TIMESTAMP_NS '1678-01-01') = coalesce(f.llm_start,
        TIMESTAMP_NS '1678-01-01') AND (p.llm_span_id < f.llm_span_id OR
        (p.llm_span_id = f.llm_span_id AND p.llm_index <= f.llm_index))))) THEN
        p.llm_span_id ELSE f.llm_span_id END AS llm_span_id, CASE WHEN (p.llm_span_id
        IS NOT NULL AND (f.llm_span_id IS NULL OR coalesce(p.llm_start, TIMESTAMP_NS
        '1678-01-01') > coalesce(f.llm_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.llm_start, TIMESTAMP_NS '1678-01-01') = coalesce(f.llm_start,
        TIMESTAMP_NS '1678-01-01') AND (p.llm_span_id < f.llm_span_id OR
        (p.llm_span_id = f.llm_span_id AND p.llm_index <= f.llm_index))))) THEN
        p.llm_index ELSE f.llm_index END AS llm_index, CASE WHEN (p.llm_span_id IS NOT
        NULL AND (f.llm_span_id IS NULL OR coalesce(p.llm_start, TIMESTAMP_NS
        '1678-01-01') > coalesce(f.llm_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.llm_start, TIMESTAMP_NS '1678-01-01') = coalesce(f.llm_start,
        TIMESTAMP_NS '1678-01-01') AND (p.llm_span_id < f.llm_span_id OR
        (p.llm_span_id = f.llm_span_id AND p.llm_index <= f.llm_index))))) THEN
        p.llm_start ELSE f.llm_start END AS llm_start, CASE WHEN (p.llm_span_id IS NOT
        NULL AND (f.llm_span_id IS NULL OR coalesce(p.llm_start, TIMESTAMP_NS
        '1678-01-01') > coalesce(f.llm_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.llm_start, TIMESTAMP_NS '1678-01-01') = coalesce(f.llm_start,
        TIMESTAMP_NS '1678-01-01') AND (p.llm_span_id < f.llm_span_id OR
        (p.llm_span_id = f.llm_span_id AND p.llm_index <= f.llm_index))))) THEN
        p.llm_ms ELSE f.llm_ms END AS llm_ms, CASE WHEN (p.llm_span_id IS NOT NULL AND
        (f.llm_span_id IS NULL OR coalesce(p.llm_start, TIMESTAMP_NS '1678-01-01') >
        coalesce(f.llm_start, TIMESTAMP_NS '1678-01-01') OR (coalesce(p.llm_start,
        TIMESTAMP_NS '1678-01-01') = coalesce(f.llm_start, TIMESTAMP_NS '1678-01-01')
        AND (p.llm_span_id < f.llm_span_id OR (p.llm_span_id = f.llm_span_id AND
        p.llm_index <= f.llm_index))))) THEN p.llm_status ELSE f.llm_status END AS
        llm_status, CASE WHEN (p.llm_span_id IS NOT NULL AND (f.llm_span_id IS NULL OR
        coalesce(p.llm_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.llm_start,
        TIMESTAMP_NS '1678-01-01') OR (coalesce(p.llm_start, TIMESTAMP_NS
        '1678-01-01') = coalesce(f.llm_start, TIMESTAMP_NS '1678-01-01') AND
        (p.llm_span_id < f.llm_span_id OR (p.llm_span_id = f.llm_span_id AND
        p.llm_index <= f.llm_index))))) THEN p.llm_model ELSE f.llm_model END AS
        llm_model, CASE WHEN (p.llm_span_id IS NOT NULL AND (f.llm_span_id IS NULL OR
        coalesce(p.llm_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.llm_start,
        TIMESTAMP_NS '1678-01-01') OR (coalesce(p.llm_start, TIMESTAMP_NS
        '1678-01-01') = coalesce(f.llm_start, TIMESTAMP_NS '1678-01-01') AND
        (p.llm_span_id < f.llm_span_id OR (p.llm_span_id = f.llm_span_id AND
        p.llm_index <= f.llm_index))))) THEN p.llm_instruction ELSE f.llm_instruction
        END AS llm_instruction, CASE WHEN (p.llm_span_id IS NOT NULL AND
        (f.llm_span_id IS NULL OR coalesce(p.llm_start, TIMESTAMP_NS '1678-01-01') >
        coalesce(f.llm_start, TIMESTAMP_NS '1678-01-01') OR (coalesce(p.llm_start,
        TIMESTAMP_NS '1678-01-01') = coalesce(f.llm_start, TIMESTAMP_NS '1678-01-01')
        AND (p.llm_span_id < f.llm_span_id OR (p.llm_span_id = f.llm_span_id AND
        p.llm_index <= f.llm_index))))) THEN p.output ELSE f.output END AS output,
        CASE WHEN (p.llm_span_id IS NOT NULL AND (f.llm_span_id IS NULL OR
        coalesce(p.llm_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.llm_start,
        TIMESTAMP_NS '1678-01-01') OR (coalesce(p.llm_start, TIMESTAMP_NS
        '1678-01-01') = coalesce(f.llm_start, TIMESTAMP_NS '1678-01-01') AND
        (p.llm_span_id < f.llm_span_id OR (p.llm_span_id = f.llm_span_id AND
        p.llm_index <= f.llm_index))))) THEN p.input_tokens ELSE f.input_tokens END AS
        input_tokens, CASE WHEN (p.llm_span_id IS NOT NULL AND (f.llm_span_id IS NULL
        OR coalesce(p.llm_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.llm_start,
        TIMESTAMP_NS '1678-01-01') OR (coalesce(p.llm_start, TIMESTAMP_NS
        '1678-01-01') = coalesce(f.llm_start, TIMESTAMP_NS '1678-01-01') AND
        (p.llm_span_id < f.llm_span_id OR (p.llm_span_id = f.llm_span_id AND
        p.llm_index <= f.llm_index))))) THEN p.output_tokens ELSE f.output_tokens END
        AS output_tokens, CASE WHEN (p.llm_span_id IS NOT NULL AND (f.llm_span_id IS
        NULL OR coalesce(p.llm_start, TIMESTAMP_NS '1678-01-01') >
        coalesce(f.llm_start, TIMESTAMP_NS '1678-01-01') OR (coalesce(p.llm_start,
        TIMESTAMP_NS '1678-01-01') = coalesce(f.llm_start, TIMESTAMP_NS '1678-01-01')
        AND (p.llm_span_id < f.llm_span_id OR (p.llm_span_id = f.llm_span_id AND
        p.llm_index <= f.llm_index))))) THEN p.llm_instruction_kind ELSE
        f.llm_instruction_kind END AS llm_instruction_kind, CASE WHEN (p.llm_span_id
        IS NOT NULL AND (f.llm_span_id IS NULL OR coalesce(p.llm_start, TIMESTAMP_NS
        '1678-01-01') > coalesce(f.llm_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.llm_start, TIMESTAMP_NS '1678-01-01') = coalesce(f.llm_start,
        TIMESTAMP_NS '1678-01-01') AND (p.llm_span_id < f.llm_span_id OR
        (p.llm_span_id = f.llm_span_id AND p.llm_index <= f.llm_index))))) THEN
        p.llm_batch_size ELSE f.llm_batch_size END AS llm_batch_size FROM
        pipeline_row_facts f
                           JOIN pipeline_row_parts p USING (trace_id, row_id))
    """,
)

_V8 = (
    """ALTER TABLE llm_records ADD COLUMN response_model VARCHAR""",
    """DROP VIEW pipeline_rows""",
    """DROP TABLE pipeline_row_facts""",
    """DROP TABLE pipeline_row_parts""",
    """CREATE TABLE pipeline_row_facts (
    trace_id VARCHAR NOT NULL,
    row_id VARCHAR NOT NULL,
    row_span_id VARCHAR,
    row_index INTEGER,
    row_start TIMESTAMP_NS,
    row_ms DOUBLE,
    row_status VARCHAR,
    row_error VARCHAR,
    run_name VARCHAR,
    cohort VARCHAR,
    expected VARCHAR,
    objects VARCHAR[],
    row_instruction VARCHAR,
    row_image_sha256 VARCHAR,
    row_instruction_kind VARCHAR,
    row_batch_size INTEGER,
    encoder_span_id VARCHAR,
    encoder_index INTEGER,
    encoder_start TIMESTAMP_NS,
    encoder_ms DOUBLE,
    encoder_status VARCHAR,
    encoder_model VARCHAR,
    checkpoint_sha256 VARCHAR,
    top_k_labels VARCHAR[],
    top_k_scores DOUBLE[],
    embedding_dim INTEGER,
    encoder_entropy DOUBLE,
    encoder_image_sha256 VARCHAR,
    encoder_multi_label BOOLEAN,
    encoder_batch_size INTEGER,
    llm_span_id VARCHAR,
    llm_index INTEGER,
    llm_start TIMESTAMP_NS,
    llm_ms DOUBLE,
    llm_status VARCHAR,
    llm_model VARCHAR,
    llm_instruction VARCHAR,
    output VARCHAR,
    input_tokens BIGINT,
    output_tokens BIGINT,
    llm_instruction_kind VARCHAR,
    llm_batch_size INTEGER,
    llm_encoder_span_id VARCHAR
)""",
    """CREATE TABLE pipeline_row_parts (
    trace_id VARCHAR NOT NULL,
    row_id VARCHAR NOT NULL,
    row_span_id VARCHAR,
    row_index INTEGER,
    row_start TIMESTAMP_NS,
    row_ms DOUBLE,
    row_status VARCHAR,
    row_error VARCHAR,
    run_name VARCHAR,
    cohort VARCHAR,
    expected VARCHAR,
    objects VARCHAR[],
    row_instruction VARCHAR,
    row_image_sha256 VARCHAR,
    row_instruction_kind VARCHAR,
    row_batch_size INTEGER,
    encoder_span_id VARCHAR,
    encoder_index INTEGER,
    encoder_start TIMESTAMP_NS,
    encoder_ms DOUBLE,
    encoder_status VARCHAR,
    encoder_model VARCHAR,
    checkpoint_sha256 VARCHAR,
    top_k_labels VARCHAR[],
    top_k_scores DOUBLE[],
    embedding_dim INTEGER,
    encoder_entropy DOUBLE,
    encoder_image_sha256 VARCHAR,
    encoder_multi_label BOOLEAN,
    encoder_batch_size INTEGER,
    llm_span_id VARCHAR,
    llm_index INTEGER,
    llm_start TIMESTAMP_NS,
    llm_ms DOUBLE,
    llm_status VARCHAR,
    llm_model VARCHAR,
    llm_instruction VARCHAR,
    output VARCHAR,
    input_tokens BIGINT,
    output_tokens BIGINT,
    llm_instruction_kind VARCHAR,
    llm_batch_size INTEGER,
    llm_encoder_span_id VARCHAR
)""",
    """CREATE OR REPLACE TEMP TABLE _vlmscope_assembled AS WITH row_part AS (SELECT trace_id,
    row_id, span_id::VARCHAR AS row_span_id, 0::INTEGER AS row_index,
    start_time::TIMESTAMP_NS AS row_start, duration_ms::DOUBLE AS row_ms,
    status_code::VARCHAR AS row_status, status_message::VARCHAR AS row_error,
    run_name::VARCHAR AS run_name, cohort::VARCHAR AS cohort, expected::VARCHAR AS
    expected, objects::VARCHAR[] AS objects, instruction::VARCHAR AS row_instruction,
    image_sha256::VARCHAR AS row_image_sha256, instruction_kind::VARCHAR AS
    row_instruction_kind, batch_size::INTEGER AS row_batch_size FROM row_records WHERE
    row_id IS NOT NULL), llm_part AS (SELECT trace_id, row_id, unnest(picked) FROM
    (SELECT trace_id, row_id, arg_min(struct_pack(llm_span_id := span_id::VARCHAR,
    llm_index := record_index::INTEGER, llm_start := start_time::TIMESTAMP_NS, llm_ms
    := duration_ms::DOUBLE, llm_status := status_code::VARCHAR, llm_model :=
    model::VARCHAR, llm_instruction := instruction::VARCHAR, output :=
    output::VARCHAR, input_tokens := input_tokens::BIGINT, output_tokens :=
    output_tokens::BIGINT, llm_instruction_kind := instruction_kind::VARCHAR,
    llm_batch_size := batch_size::INTEGER, llm_encoder_span_id :=
    encoder_span_id::VARCHAR), struct_pack(a := start_time IS NULL, b :=
    -epoch_ns(start_time), c := span_id, d := record_index)) AS picked FROM
    llm_records WHERE row_id IS NOT NULL GROUP BY trace_id, row_id)), encoder_part AS
    (SELECT trace_id, row_id, unnest(picked) FROM (SELECT trace_id, row_id,
    arg_min(struct_pack(encoder_span_id := span_id::VARCHAR, encoder_index :=
    record_index::INTEGER, encoder_start := start_time::TIMESTAMP_NS, encoder_ms :=
    duration_ms::DOUBLE, encoder_status := status_code::VARCHAR, encoder_model :=
    model::VARCHAR, checkpoint_sha256 := checkpoint_sha256::VARCHAR, top_k_labels :=
    top_k_labels::VARCHAR[], top_k_scores := top_k_scores::DOUBLE[], embedding_dim :=
    embedding_dim::INTEGER, encoder_entropy := entropy::DOUBLE, encoder_image_sha256
    := image_sha256::VARCHAR, encoder_multi_label := multi_label::BOOLEAN,
    encoder_batch_size := batch_size::INTEGER), struct_pack(l := span_id IS DISTINCT
    FROM linked, p := top_k_labels IS NULL, a := start_time IS NULL, b :=
    -epoch_ns(start_time), c := span_id, d := record_index)) AS picked FROM (SELECT
    e.*, p.llm_encoder_span_id AS linked FROM encoder_records e LEFT JOIN llm_part p
    USING (trace_id, row_id)) WHERE row_id IS NOT NULL GROUP BY trace_id, row_id))
    SELECT trace_id, row_id, row_part.row_span_id, row_part.row_index,
    row_part.row_start, row_part.row_ms, row_part.row_status, row_part.row_error,
    row_part.run_name, row_part.cohort, row_part.expected, row_part.objects,
    row_part.row_instruction, row_part.row_image_sha256,
    row_part.row_instruction_kind, row_part.row_batch_size,
    encoder_part.encoder_span_id, encoder_part.encoder_index,
    encoder_part.encoder_start, encoder_part.encoder_ms, encoder_part.encoder_status,
    encoder_part.encoder_model, encoder_part.checkpoint_sha256,
    encoder_part.top_k_labels, encoder_part.top_k_scores, encoder_part.embedding_dim,
    encoder_part.encoder_entropy, encoder_part.encoder_image_sha256,
    encoder_part.encoder_multi_label, encoder_part.encoder_batch_size,
    llm_part.llm_span_id, llm_part.llm_index, llm_part.llm_start, llm_part.llm_ms,
    llm_part.llm_status, llm_part.llm_model, llm_part.llm_instruction,
    llm_part.output, llm_part.input_tokens, llm_part.output_tokens,
    llm_part.llm_instruction_kind, llm_part.llm_batch_size,
    llm_part.llm_encoder_span_id FROM row_part FULL JOIN encoder_part USING (trace_id,
    row_id) FULL JOIN llm_part USING (trace_id, row_id)""",
    """INSERT INTO pipeline_row_facts SELECT * FROM _vlmscope_assembled WHERE row_span_id IS
    NOT NULL""",
    """INSERT INTO pipeline_row_parts SELECT * FROM _vlmscope_assembled WHERE row_span_id IS
    NULL""",
    """DROP TABLE _vlmscope_assembled""",
    """
    CREATE VIEW pipeline_rows AS
    SELECT row_id,
    trace_id,
    row_span_id AS span_id,
    run_name AS run,
    cohort,
    coalesce(row_image_sha256, encoder_image_sha256) AS image_sha256,
    expected,
    objects,
    encoder_model,
    checkpoint_sha256,
    top_k_labels,
    top_k_scores,
    embedding_dim,
    encoder_entropy,
    llm_model,
    coalesce(llm_instruction, row_instruction) AS instruction,
    output,
    input_tokens,
    output_tokens,
    encoder_ms,
    llm_ms,
    row_ms,
    CASE WHEN 'ERROR' IN (row_status, encoder_status, llm_status) THEN 'ERROR'
         ELSE 'OK' END AS status,
    row_error AS error,
    encoder_span_id,
    llm_span_id,
    row_start AS start_time,
    encoder_multi_label,
    coalesce(row_instruction_kind, llm_instruction_kind) AS instruction_kind,
    coalesce(row_batch_size, encoder_batch_size, llm_batch_size) AS batch_size,
    encoder_ms / greatest(coalesce(encoder_batch_size, 1), 1) AS encoder_share_ms,
    llm_ms / greatest(coalesce(llm_batch_size, 1), 1) AS llm_share_ms FROM
        pipeline_row_facts f
    WHERE NOT EXISTS (SELECT 1 FROM pipeline_row_parts p
                      WHERE p.trace_id = f.trace_id AND p.row_id = f.row_id)
    UNION ALL
    SELECT row_id,
    trace_id,
    row_span_id AS span_id,
    run_name AS run,
    cohort,
    coalesce(row_image_sha256, encoder_image_sha256) AS image_sha256,
    expected,
    objects,
    encoder_model,
    checkpoint_sha256,
    top_k_labels,
    top_k_scores,
    embedding_dim,
    encoder_entropy,
    llm_model,
    coalesce(llm_instruction, row_instruction) AS instruction,
    output,
    input_tokens,
    output_tokens,
    encoder_ms,
    llm_ms,
    row_ms,
    CASE WHEN 'ERROR' IN (row_status, encoder_status, llm_status) THEN 'ERROR'
         ELSE 'OK' END AS status,
    row_error AS error,
    encoder_span_id,
    llm_span_id,
    row_start AS start_time,
    encoder_multi_label,
    coalesce(row_instruction_kind, llm_instruction_kind) AS instruction_kind,
    coalesce(row_batch_size, encoder_batch_size, llm_batch_size) AS batch_size,
    encoder_ms / greatest(coalesce(encoder_batch_size, 1), 1) AS encoder_share_ms,
    llm_ms / greatest(coalesce(llm_batch_size, 1), 1) AS llm_share_ms FROM (SELECT
        f.trace_id, f.row_id, CASE WHEN (p.row_span_id IS NOT NULL AND (f.row_span_id
        IS NULL OR coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') >
        coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start,
        TIMESTAMP_NS '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01')
        AND (p.row_span_id < f.row_span_id OR (p.row_span_id = f.row_span_id AND
        p.row_index <= f.row_index))))) THEN p.row_span_id ELSE f.row_span_id END AS
        row_span_id, CASE WHEN (p.row_span_id IS NOT NULL AND (f.row_span_id IS NULL
        OR coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.row_start,
        TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
        '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND
        (p.row_span_id < f.row_span_id OR (p.row_span_id = f.row_span_id AND
        p.row_index <= f.row_index))))) THEN p.row_index ELSE f.row_index END AS
        row_index, CASE WHEN (p.row_span_id IS NOT NULL AND (f.row_span_id IS NULL OR
        coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.row_start,
        TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
        '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND
        (p.row_span_id < f.row_span_id OR (p.row_span_id = f.row_span_id AND
        p.row_index <= f.row_index))))) THEN p.row_start ELSE f.row_start END AS
        row_start, CASE WHEN (p.row_span_id IS NOT NULL AND (f.row_span_id IS NULL OR
        coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.row_start,
        TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
        '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND
        (p.row_span_id < f.row_span_id OR (p.row_span_id = f.row_span_id AND
        p.row_index <= f.row_index))))) THEN p.row_ms ELSE f.row_ms END AS row_ms,
        CASE WHEN (p.row_span_id IS NOT NULL AND (f.row_span_id IS NULL OR
        coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.row_start,
        TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
        '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND
        (p.row_span_id < f.row_span_id OR (p.row_span_id = f.row_span_id AND
        p.row_index <= f.row_index))))) THEN p.row_status ELSE f.row_status END AS
        row_status, CASE WHEN (p.row_span_id IS NOT NULL AND (f.row_span_id IS NULL OR
        coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.row_start,
        TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
        '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND
        (p.row_span_id < f.row_span_id OR (p.row_span_id = f.row_span_id AND
        p.row_index <= f.row_index))))) THEN p.row_error ELSE f.row_error END AS
        row_error, CASE WHEN (p.row_span_id IS NOT NULL AND (f.row_span_id IS NULL OR
        coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.row_start,
        TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
        '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND
        (p.row_span_id < f.row_span_id OR (p.row_span_id = f.row_span_id AND
        p.row_index <= f.row_index))))) THEN p.run_name ELSE f.run_name END AS
        run_name, CASE WHEN (p.row_span_id IS NOT NULL AND (f.row_span_id IS NULL OR
        coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.row_start,
        TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
        '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND
        (p.row_span_id < f.row_span_id OR (p.row_span_id = f.row_span_id AND
        p.row_index <= f.row_index))))) THEN p.cohort ELSE f.cohort END AS cohort,
        CASE WHEN (p.row_span_id IS NOT NULL AND (f.row_span_id IS NULL OR
        coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.row_start,
        TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
        '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND
        (p.row_span_id < f.row_span_id OR (p.row_span_id = f.row_span_id AND
        p.row_index <= f.row_index))))) THEN p.expected ELSE f.expected END AS
        expected, CASE WHEN (p.row_span_id IS NOT NULL AND (f.row_span_id IS NULL OR
        coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.row_start,
        TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
        '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND
        (p.row_span_id < f.row_span_id OR (p.row_span_id = f.row_span_id AND
        p.row_index <= f.row_index))))) THEN p.objects ELSE f.objects END AS objects,
        CASE WHEN (p.row_span_id IS NOT NULL AND (f.row_span_id IS NULL OR
        coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.row_start,
        TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
        '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND
        (p.row_span_id < f.row_span_id OR (p.row_span_id = f.row_span_id AND
        p.row_index <= f.row_index))))) THEN p.row_instruction ELSE f.row_instruction
        END AS row_instruction, CASE WHEN (p.row_span_id IS NOT NULL AND
        (f.row_span_id IS NULL OR coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') >
        coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start,
        TIMESTAMP_NS '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01')
        AND (p.row_span_id < f.row_span_id OR (p.row_span_id = f.row_span_id AND
        p.row_index <= f.row_index))))) THEN p.row_image_sha256 ELSE
        f.row_image_sha256 END AS row_image_sha256, CASE WHEN (p.row_span_id IS NOT
        NULL AND (f.row_span_id IS NULL OR coalesce(p.row_start, TIMESTAMP_NS
        '1678-01-01') > coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') = coalesce(f.row_start,
        TIMESTAMP_NS '1678-01-01') AND (p.row_span_id < f.row_span_id OR
        (p.row_span_id = f.row_span_id AND p.row_index <= f.row_index))))) THEN
        p.row_instruction_kind ELSE f.row_instruction_kind END AS
        row_instruction_kind, CASE WHEN (p.row_span_id IS NOT NULL AND (f.row_span_id
        IS NULL OR coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') >
        coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start,
        TIMESTAMP_NS '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01')
        AND (p.row_span_id < f.row_span_id OR (p.row_span_id = f.row_span_id AND
        p.row_index <= f.row_index))))) THEN p.row_batch_size ELSE f.row_batch_size
        END AS row_batch_size, CASE WHEN (p.encoder_span_id IS NOT NULL AND
        (f.encoder_span_id IS NULL OR (p.top_k_labels IS NOT NULL AND f.top_k_labels
        IS NULL) OR ((p.top_k_labels IS NULL) = (f.top_k_labels IS NULL) AND
        (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') >
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
        f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
        p.encoder_index <= f.encoder_index))))))) THEN p.encoder_span_id ELSE
        f.encoder_span_id END AS encoder_span_id, CASE WHEN (p.encoder_span_id IS NOT
        NULL AND (f.encoder_span_id IS NULL OR (p.top_k_labels IS NOT NULL AND
        f.top_k_labels IS NULL) OR ((p.top_k_labels IS NULL) = (f.top_k_labels IS
        NULL) AND (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') >
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
        f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
        p.encoder_index <= f.encoder_index))))))) THEN p.encoder_index ELSE
        f.encoder_index END AS encoder_index, CASE WHEN (p.encoder_span_id IS NOT NULL
        AND (f.encoder_span_id IS NULL OR (p.top_k_labels IS NOT NULL AND
        f.top_k_labels IS NULL) OR ((p.top_k_labels IS NULL) = (f.top_k_labels IS
        NULL) AND (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') >
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
        f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
        p.encoder_index <= f.encoder_index))))))) THEN p.encoder_start ELSE
        f.encoder_start END AS encoder_start, CASE WHEN (p.encoder_span_id IS NOT NULL
        AND (f.encoder_span_id IS NULL OR (p.top_k_labels IS NOT NULL AND
        f.top_k_labels IS NULL) OR ((p.top_k_labels IS NULL) = (f.top_k_labels IS
        NULL) AND (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') >
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
        f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
        p.encoder_index <= f.encoder_index))))))) THEN p.encoder_ms ELSE f.encoder_ms
        END AS encoder_ms, CASE WHEN (p.encoder_span_id IS NOT NULL AND
        (f.encoder_span_id IS NULL OR (p.top_k_labels IS NOT NULL AND f.top_k_labels
        IS NULL) OR ((p.top_k_labels IS NULL) = (f.top_k_labels IS NULL) AND
        (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') >
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
        f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
        p.encoder_index <= f.encoder_index))))))) THEN p.encoder_status ELSE
        f.encoder_status END AS encoder_status, CASE WHEN (p.encoder_span_id IS NOT
        NULL AND (f.encoder_span_id IS NULL OR (p.top_k_labels IS NOT NULL AND
        f.top_k_labels IS NULL) OR ((p.top_k_labels IS NULL) = (f.top_k_labels IS
        NULL) AND (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') >
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
        f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
        p.encoder_index <= f.encoder_index))))))) THEN p.encoder_model ELSE
        f.encoder_model END AS encoder_model, CASE WHEN (p.encoder_span_id IS NOT NULL
        AND (f.encoder_span_id IS NULL OR (p.top_k_labels IS NOT NULL AND
        f.top_k_labels IS NULL) OR ((p.top_k_labels IS NULL) = (f.top_k_labels IS
        NULL) AND (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') >
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
        f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
        p.encoder_index <= f.encoder_index))))))) THEN p.checkpoint_sha256 ELSE
        f.checkpoint_sha256 END AS checkpoint_sha256, CASE WHEN (p.encoder_span_id IS
        NOT NULL AND (f.encoder_span_id IS NULL OR (p.top_k_labels IS NOT NULL AND
        f.top_k_labels IS NULL) OR ((p.top_k_labels IS NULL) = (f.top_k_labels IS
        NULL) AND (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') >
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
        f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
        p.encoder_index <= f.encoder_index))))))) THEN p.top_k_labels ELSE
        f.top_k_labels END AS top_k_labels, CASE WHEN (p.encoder_span_id IS NOT NULL
        AND (f.encoder_span_id IS NULL OR (p.top_k_labels IS NOT NULL AND
        f.top_k_labels IS NULL) OR ((p.top_k_labels IS NULL) = (f.top_k_labels IS
        NULL) AND (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') >
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
        f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
        p.encoder_index <= f.encoder_index))))))) THEN p.top_k_scores ELSE
        f.top_k_scores END AS top_k_scores, CASE WHEN (p.encoder_span_id IS NOT NULL
        AND (f.encoder_span_id IS NULL OR (p.top_k_labels IS NOT NULL AND
        f.top_k_labels IS NULL) OR ((p.top_k_labels IS NULL) = (f.top_k_labels IS
        NULL) AND (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') >
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
        f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
        p.encoder_index <= f.encoder_index))))))) THEN p.embedding_dim ELSE
        f.embedding_dim END AS embedding_dim, CASE WHEN (p.encoder_span_id IS NOT NULL
        AND (f.encoder_span_id IS NULL OR (p.top_k_labels IS NOT NULL AND
        f.top_k_labels IS NULL) OR ((p.top_k_labels IS NULL) = (f.top_k_labels IS
        NULL) AND (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') >
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
        f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
        p.encoder_index <= f.encoder_index))))))) THEN p.encoder_entropy ELSE
        f.encoder_entropy END AS encoder_entropy, CASE WHEN (p.encoder_span_id IS NOT
        NULL AND (f.encoder_span_id IS NULL OR (p.top_k_labels IS NOT NULL AND
        f.top_k_labels IS NULL) OR ((p.top_k_labels IS NULL) = (f.top_k_labels IS
        NULL) AND (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') >
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
        f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
        p.encoder_index <= f.encoder_index))))))) THEN p.encoder_image_sha256 ELSE
        f.encoder_image_sha256 END AS encoder_image_sha256, CASE WHEN
        (p.encoder_span_id IS NOT NULL AND (f.encoder_span_id IS NULL OR
        (p.top_k_labels IS NOT NULL AND f.top_k_labels IS NULL) OR ((p.top_k_labels IS
        NULL) = (f.top_k_labels IS NULL) AND (coalesce(p.encoder_start, TIMESTAMP_NS
        '1678-01-01') > coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
        f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
        p.encoder_index <= f.encoder_index))))))) THEN p.encoder_multi_label ELSE
        f.encoder_multi_label END AS encoder_multi_label, CASE WHEN (p.encoder_span_id
        IS NOT NULL AND (f.encoder_span_id IS NULL OR (p.top_k_labels IS NOT NULL AND
        f.top_k_labels IS NULL) OR ((p.top_k_labels IS NULL) = (f.top_k_labels IS
        NULL) AND (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') >
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
        f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
        p.encoder_index <= f.encoder_index))))))) THEN p.encoder_batch_size ELSE
        f.encoder_batch_size END AS encoder_batch_size, CASE WHEN (p.llm_span_id IS
        NOT NULL AND (f.llm_span_id IS NULL OR coalesce(p.llm_start, TIMESTAMP_NS
        '1678-01-01') > coalesce(f.llm_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.llm_start, TIMESTAMP_NS '1678-01-01') = coalesce(f.llm_start,
        TIMESTAMP_NS '1678-01-01') AND (p.llm_span_id < f.llm_span_id OR
        (p.llm_span_id = f.llm_span_id AND p.llm_index <= f.llm_index))))) THEN
        p.llm_span_id ELSE f.llm_span_id END AS llm_span_id, CASE WHEN (p.llm_span_id
        IS NOT NULL AND (f.llm_span_id IS NULL OR coalesce(p.llm_start, TIMESTAMP_NS
        '1678-01-01') > coalesce(f.llm_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.llm_start, TIMESTAMP_NS '1678-01-01') = coalesce(f.llm_start,
        TIMESTAMP_NS '1678-01-01') AND (p.llm_span_id < f.llm_span_id OR
        (p.llm_span_id = f.llm_span_id AND p.llm_index <= f.llm_index))))) THEN
        p.llm_index ELSE f.llm_index END AS llm_index, CASE WHEN (p.llm_span_id IS NOT
        NULL AND (f.llm_span_id IS NULL OR coalesce(p.llm_start, TIMESTAMP_NS
        '1678-01-01') > coalesce(f.llm_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.llm_start, TIMESTAMP_NS '1678-01-01') = coalesce(f.llm_start,
        TIMESTAMP_NS '1678-01-01') AND (p.llm_span_id < f.llm_span_id OR
        (p.llm_span_id = f.llm_span_id AND p.llm_index <= f.llm_index))))) THEN
        p.llm_start ELSE f.llm_start END AS llm_start, CASE WHEN (p.llm_span_id IS NOT
        NULL AND (f.llm_span_id IS NULL OR coalesce(p.llm_start, TIMESTAMP_NS
        '1678-01-01') > coalesce(f.llm_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.llm_start, TIMESTAMP_NS '1678-01-01') = coalesce(f.llm_start,
        TIMESTAMP_NS '1678-01-01') AND (p.llm_span_id < f.llm_span_id OR
        (p.llm_span_id = f.llm_span_id AND p.llm_index <= f.llm_index))))) THEN
        p.llm_ms ELSE f.llm_ms END AS llm_ms, CASE WHEN (p.llm_span_id IS NOT NULL AND
        (f.llm_span_id IS NULL OR coalesce(p.llm_start, TIMESTAMP_NS '1678-01-01') >
        coalesce(f.llm_start, TIMESTAMP_NS '1678-01-01') OR (coalesce(p.llm_start,
        TIMESTAMP_NS '1678-01-01') = coalesce(f.llm_start, TIMESTAMP_NS '1678-01-01')
        AND (p.llm_span_id < f.llm_span_id OR (p.llm_span_id = f.llm_span_id AND
        p.llm_index <= f.llm_index))))) THEN p.llm_status ELSE f.llm_status END AS
        llm_status, CASE WHEN (p.llm_span_id IS NOT NULL AND (f.llm_span_id IS NULL OR
        coalesce(p.llm_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.llm_start,
        TIMESTAMP_NS '1678-01-01') OR (coalesce(p.llm_start, TIMESTAMP_NS
        '1678-01-01') = coalesce(f.llm_start, TIMESTAMP_NS '1678-01-01') AND
        (p.llm_span_id < f.llm_span_id OR (p.llm_span_id = f.llm_span_id AND
        p.llm_index <= f.llm_index))))) THEN p.llm_model ELSE f.llm_model END AS
        llm_model, CASE WHEN (p.llm_span_id IS NOT NULL AND (f.llm_span_id IS NULL OR
        coalesce(p.llm_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.llm_start,
        TIMESTAMP_NS '1678-01-01') OR (coalesce(p.llm_start, TIMESTAMP_NS
        '1678-01-01') = coalesce(f.llm_start, TIMESTAMP_NS '1678-01-01') AND
        (p.llm_span_id < f.llm_span_id OR (p.llm_span_id = f.llm_span_id AND
        p.llm_index <= f.llm_index))))) THEN p.llm_instruction ELSE f.llm_instruction
        END AS llm_instruction, CASE WHEN (p.llm_span_id IS NOT NULL AND
        (f.llm_span_id IS NULL OR coalesce(p.llm_start, TIMESTAMP_NS '1678-01-01') >
        coalesce(f.llm_start, TIMESTAMP_NS '1678-01-01') OR (coalesce(p.llm_start,
        TIMESTAMP_NS '1678-01-01') = coalesce(f.llm_start, TIMESTAMP_NS '1678-01-01')
        AND (p.llm_span_id < f.llm_span_id OR (p.llm_span_id = f.llm_span_id AND
        p.llm_index <= f.llm_index))))) THEN p.output ELSE f.output END AS output,
        CASE WHEN (p.llm_span_id IS NOT NULL AND (f.llm_span_id IS NULL OR
        coalesce(p.llm_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.llm_start,
        TIMESTAMP_NS '1678-01-01') OR (coalesce(p.llm_start, TIMESTAMP_NS
        '1678-01-01') = coalesce(f.llm_start, TIMESTAMP_NS '1678-01-01') AND
        (p.llm_span_id < f.llm_span_id OR (p.llm_span_id = f.llm_span_id AND
        p.llm_index <= f.llm_index))))) THEN p.input_tokens ELSE f.input_tokens END AS
        input_tokens, CASE WHEN (p.llm_span_id IS NOT NULL AND (f.llm_span_id IS NULL
        OR coalesce(p.llm_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.llm_start,
        TIMESTAMP_NS '1678-01-01') OR (coalesce(p.llm_start, TIMESTAMP_NS
        '1678-01-01') = coalesce(f.llm_start, TIMESTAMP_NS '1678-01-01') AND
        (p.llm_span_id < f.llm_span_id OR (p.llm_span_id = f.llm_span_id AND
        p.llm_index <= f.llm_index))))) THEN p.output_tokens ELSE f.output_tokens END
        AS output_tokens, CASE WHEN (p.llm_span_id IS NOT NULL AND (f.llm_span_id IS
        NULL OR coalesce(p.llm_start, TIMESTAMP_NS '1678-01-01') >
        coalesce(f.llm_start, TIMESTAMP_NS '1678-01-01') OR (coalesce(p.llm_start,
        TIMESTAMP_NS '1678-01-01') = coalesce(f.llm_start, TIMESTAMP_NS '1678-01-01')
        AND (p.llm_span_id < f.llm_span_id OR (p.llm_span_id = f.llm_span_id AND
        p.llm_index <= f.llm_index))))) THEN p.llm_instruction_kind ELSE
        f.llm_instruction_kind END AS llm_instruction_kind, CASE WHEN (p.llm_span_id
        IS NOT NULL AND (f.llm_span_id IS NULL OR coalesce(p.llm_start, TIMESTAMP_NS
        '1678-01-01') > coalesce(f.llm_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.llm_start, TIMESTAMP_NS '1678-01-01') = coalesce(f.llm_start,
        TIMESTAMP_NS '1678-01-01') AND (p.llm_span_id < f.llm_span_id OR
        (p.llm_span_id = f.llm_span_id AND p.llm_index <= f.llm_index))))) THEN
        p.llm_batch_size ELSE f.llm_batch_size END AS llm_batch_size, CASE WHEN
        (p.llm_span_id IS NOT NULL AND (f.llm_span_id IS NULL OR coalesce(p.llm_start,
        TIMESTAMP_NS '1678-01-01') > coalesce(f.llm_start, TIMESTAMP_NS '1678-01-01')
        OR (coalesce(p.llm_start, TIMESTAMP_NS '1678-01-01') = coalesce(f.llm_start,
        TIMESTAMP_NS '1678-01-01') AND (p.llm_span_id < f.llm_span_id OR
        (p.llm_span_id = f.llm_span_id AND p.llm_index <= f.llm_index))))) THEN
        p.llm_encoder_span_id ELSE f.llm_encoder_span_id END AS llm_encoder_span_id
        FROM pipeline_row_facts f
                           JOIN pipeline_row_parts p USING (trace_id, row_id))
    """,
)


_V9 = (
    """
    ALTER TABLE dataset_rows ADD COLUMN instruction_kind VARCHAR
    """,
    """
    CREATE OR REPLACE VIEW pipeline_rows AS
    SELECT row_id,
    trace_id,
    row_span_id AS span_id,
    run_name AS run,
    cohort,
    coalesce(row_image_sha256, encoder_image_sha256) AS image_sha256,
    expected,
    objects,
    encoder_model,
    checkpoint_sha256,
    top_k_labels,
    top_k_scores,
    embedding_dim,
    encoder_entropy,
    llm_model,
    coalesce(llm_instruction, row_instruction) AS instruction,
    output,
    input_tokens,
    output_tokens,
    encoder_ms,
    llm_ms,
    row_ms,
    CASE WHEN 'ERROR' IN (row_status, encoder_status, llm_status) THEN 'ERROR'
         ELSE 'OK' END AS status,
    row_error AS error,
    encoder_span_id,
    llm_span_id,
    row_start AS start_time,
    encoder_multi_label,
    coalesce(row_instruction_kind, llm_instruction_kind) AS instruction_kind,
    coalesce(row_batch_size, encoder_batch_size, llm_batch_size) AS batch_size,
    encoder_ms / greatest(coalesce(encoder_batch_size, 1), 1) AS encoder_share_ms,
    llm_ms / greatest(coalesce(llm_batch_size, 1), 1) AS llm_share_ms,
    CASE WHEN top_k_labels IS NULL THEN NULL::VARCHAR[] WHEN
        coalesce(encoder_multi_label, false) THEN list_filter(top_k_labels,
        lambda x, i: coalesce(top_k_scores[i], 0.0) >= 0.5::DOUBLE) ELSE
        top_k_labels[1:1] END AS encoder_reading
    FROM
        pipeline_row_facts f
    WHERE NOT EXISTS (SELECT 1 FROM pipeline_row_parts p
                      WHERE p.trace_id = f.trace_id AND p.row_id = f.row_id)
    UNION ALL
    SELECT row_id,
    trace_id,
    row_span_id AS span_id,
    run_name AS run,
    cohort,
    coalesce(row_image_sha256, encoder_image_sha256) AS image_sha256,
    expected,
    objects,
    encoder_model,
    checkpoint_sha256,
    top_k_labels,
    top_k_scores,
    embedding_dim,
    encoder_entropy,
    llm_model,
    coalesce(llm_instruction, row_instruction) AS instruction,
    output,
    input_tokens,
    output_tokens,
    encoder_ms,
    llm_ms,
    row_ms,
    CASE WHEN 'ERROR' IN (row_status, encoder_status, llm_status) THEN 'ERROR'
         ELSE 'OK' END AS status,
    row_error AS error,
    encoder_span_id,
    llm_span_id,
    row_start AS start_time,
    encoder_multi_label,
    coalesce(row_instruction_kind, llm_instruction_kind) AS instruction_kind,
    coalesce(row_batch_size, encoder_batch_size, llm_batch_size) AS batch_size,
    encoder_ms / greatest(coalesce(encoder_batch_size, 1), 1) AS encoder_share_ms,
    llm_ms / greatest(coalesce(llm_batch_size, 1), 1) AS llm_share_ms,
    CASE WHEN top_k_labels IS NULL THEN NULL::VARCHAR[] WHEN
        coalesce(encoder_multi_label, false) THEN list_filter(top_k_labels,
        lambda x, i: coalesce(top_k_scores[i], 0.0) >= 0.5::DOUBLE) ELSE
        top_k_labels[1:1] END AS encoder_reading
    FROM (SELECT
        f.trace_id, f.row_id, CASE WHEN (p.row_span_id IS NOT NULL AND (f.row_span_id
        IS NULL OR coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') >
        coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start,
        TIMESTAMP_NS '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01')
        AND (p.row_span_id < f.row_span_id OR (p.row_span_id = f.row_span_id AND
        p.row_index <= f.row_index))))) THEN p.row_span_id ELSE f.row_span_id END AS
        row_span_id, CASE WHEN (p.row_span_id IS NOT NULL AND (f.row_span_id IS NULL
        OR coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.row_start,
        TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
        '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND
        (p.row_span_id < f.row_span_id OR (p.row_span_id = f.row_span_id AND
        p.row_index <= f.row_index))))) THEN p.row_index ELSE f.row_index END AS
        row_index, CASE WHEN (p.row_span_id IS NOT NULL AND (f.row_span_id IS NULL OR
        coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.row_start,
        TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
        '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND
        (p.row_span_id < f.row_span_id OR (p.row_span_id = f.row_span_id AND
        p.row_index <= f.row_index))))) THEN p.row_start ELSE f.row_start END AS
        row_start, CASE WHEN (p.row_span_id IS NOT NULL AND (f.row_span_id IS NULL OR
        coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.row_start,
        TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
        '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND
        (p.row_span_id < f.row_span_id OR (p.row_span_id = f.row_span_id AND
        p.row_index <= f.row_index))))) THEN p.row_ms ELSE f.row_ms END AS row_ms,
        CASE WHEN (p.row_span_id IS NOT NULL AND (f.row_span_id IS NULL OR
        coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.row_start,
        TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
        '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND
        (p.row_span_id < f.row_span_id OR (p.row_span_id = f.row_span_id AND
        p.row_index <= f.row_index))))) THEN p.row_status ELSE f.row_status END AS
        row_status, CASE WHEN (p.row_span_id IS NOT NULL AND (f.row_span_id IS NULL OR
        coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.row_start,
        TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
        '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND
        (p.row_span_id < f.row_span_id OR (p.row_span_id = f.row_span_id AND
        p.row_index <= f.row_index))))) THEN p.row_error ELSE f.row_error END AS
        row_error, CASE WHEN (p.row_span_id IS NOT NULL AND (f.row_span_id IS NULL OR
        coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.row_start,
        TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
        '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND
        (p.row_span_id < f.row_span_id OR (p.row_span_id = f.row_span_id AND
        p.row_index <= f.row_index))))) THEN p.run_name ELSE f.run_name END AS
        run_name, CASE WHEN (p.row_span_id IS NOT NULL AND (f.row_span_id IS NULL OR
        coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.row_start,
        TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
        '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND
        (p.row_span_id < f.row_span_id OR (p.row_span_id = f.row_span_id AND
        p.row_index <= f.row_index))))) THEN p.cohort ELSE f.cohort END AS cohort,
        CASE WHEN (p.row_span_id IS NOT NULL AND (f.row_span_id IS NULL OR
        coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.row_start,
        TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
        '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND
        (p.row_span_id < f.row_span_id OR (p.row_span_id = f.row_span_id AND
        p.row_index <= f.row_index))))) THEN p.expected ELSE f.expected END AS
        expected, CASE WHEN (p.row_span_id IS NOT NULL AND (f.row_span_id IS NULL OR
        coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.row_start,
        TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
        '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND
        (p.row_span_id < f.row_span_id OR (p.row_span_id = f.row_span_id AND
        p.row_index <= f.row_index))))) THEN p.objects ELSE f.objects END AS objects,
        CASE WHEN (p.row_span_id IS NOT NULL AND (f.row_span_id IS NULL OR
        coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.row_start,
        TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
        '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND
        (p.row_span_id < f.row_span_id OR (p.row_span_id = f.row_span_id AND
        p.row_index <= f.row_index))))) THEN p.row_instruction ELSE f.row_instruction
        END AS row_instruction, CASE WHEN (p.row_span_id IS NOT NULL AND
        (f.row_span_id IS NULL OR coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') >
        coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start,
        TIMESTAMP_NS '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01')
        AND (p.row_span_id < f.row_span_id OR (p.row_span_id = f.row_span_id AND
        p.row_index <= f.row_index))))) THEN p.row_image_sha256 ELSE
        f.row_image_sha256 END AS row_image_sha256, CASE WHEN (p.row_span_id IS NOT
        NULL AND (f.row_span_id IS NULL OR coalesce(p.row_start, TIMESTAMP_NS
        '1678-01-01') > coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') = coalesce(f.row_start,
        TIMESTAMP_NS '1678-01-01') AND (p.row_span_id < f.row_span_id OR
        (p.row_span_id = f.row_span_id AND p.row_index <= f.row_index))))) THEN
        p.row_instruction_kind ELSE f.row_instruction_kind END AS
        row_instruction_kind, CASE WHEN (p.row_span_id IS NOT NULL AND (f.row_span_id
        IS NULL OR coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') >
        coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start,
        TIMESTAMP_NS '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01')
        AND (p.row_span_id < f.row_span_id OR (p.row_span_id = f.row_span_id AND
        p.row_index <= f.row_index))))) THEN p.row_batch_size ELSE f.row_batch_size
        END AS row_batch_size, CASE WHEN (p.encoder_span_id IS NOT NULL AND
        (f.encoder_span_id IS NULL OR (p.top_k_labels IS NOT NULL AND f.top_k_labels
        IS NULL) OR ((p.top_k_labels IS NULL) = (f.top_k_labels IS NULL) AND
        (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') >
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
        f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
        p.encoder_index <= f.encoder_index))))))) THEN p.encoder_span_id ELSE
        f.encoder_span_id END AS encoder_span_id, CASE WHEN (p.encoder_span_id IS NOT
        NULL AND (f.encoder_span_id IS NULL OR (p.top_k_labels IS NOT NULL AND
        f.top_k_labels IS NULL) OR ((p.top_k_labels IS NULL) = (f.top_k_labels IS
        NULL) AND (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') >
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
        f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
        p.encoder_index <= f.encoder_index))))))) THEN p.encoder_index ELSE
        f.encoder_index END AS encoder_index, CASE WHEN (p.encoder_span_id IS NOT NULL
        AND (f.encoder_span_id IS NULL OR (p.top_k_labels IS NOT NULL AND
        f.top_k_labels IS NULL) OR ((p.top_k_labels IS NULL) = (f.top_k_labels IS
        NULL) AND (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') >
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
        f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
        p.encoder_index <= f.encoder_index))))))) THEN p.encoder_start ELSE
        f.encoder_start END AS encoder_start, CASE WHEN (p.encoder_span_id IS NOT NULL
        AND (f.encoder_span_id IS NULL OR (p.top_k_labels IS NOT NULL AND
        f.top_k_labels IS NULL) OR ((p.top_k_labels IS NULL) = (f.top_k_labels IS
        NULL) AND (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') >
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
        f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
        p.encoder_index <= f.encoder_index))))))) THEN p.encoder_ms ELSE f.encoder_ms
        END AS encoder_ms, CASE WHEN (p.encoder_span_id IS NOT NULL AND
        (f.encoder_span_id IS NULL OR (p.top_k_labels IS NOT NULL AND f.top_k_labels
        IS NULL) OR ((p.top_k_labels IS NULL) = (f.top_k_labels IS NULL) AND
        (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') >
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
        f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
        p.encoder_index <= f.encoder_index))))))) THEN p.encoder_status ELSE
        f.encoder_status END AS encoder_status, CASE WHEN (p.encoder_span_id IS NOT
        NULL AND (f.encoder_span_id IS NULL OR (p.top_k_labels IS NOT NULL AND
        f.top_k_labels IS NULL) OR ((p.top_k_labels IS NULL) = (f.top_k_labels IS
        NULL) AND (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') >
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
        f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
        p.encoder_index <= f.encoder_index))))))) THEN p.encoder_model ELSE
        f.encoder_model END AS encoder_model, CASE WHEN (p.encoder_span_id IS NOT NULL
        AND (f.encoder_span_id IS NULL OR (p.top_k_labels IS NOT NULL AND
        f.top_k_labels IS NULL) OR ((p.top_k_labels IS NULL) = (f.top_k_labels IS
        NULL) AND (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') >
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
        f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
        p.encoder_index <= f.encoder_index))))))) THEN p.checkpoint_sha256 ELSE
        f.checkpoint_sha256 END AS checkpoint_sha256, CASE WHEN (p.encoder_span_id IS
        NOT NULL AND (f.encoder_span_id IS NULL OR (p.top_k_labels IS NOT NULL AND
        f.top_k_labels IS NULL) OR ((p.top_k_labels IS NULL) = (f.top_k_labels IS
        NULL) AND (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') >
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
        f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
        p.encoder_index <= f.encoder_index))))))) THEN p.top_k_labels ELSE
        f.top_k_labels END AS top_k_labels, CASE WHEN (p.encoder_span_id IS NOT NULL
        AND (f.encoder_span_id IS NULL OR (p.top_k_labels IS NOT NULL AND
        f.top_k_labels IS NULL) OR ((p.top_k_labels IS NULL) = (f.top_k_labels IS
        NULL) AND (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') >
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
        f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
        p.encoder_index <= f.encoder_index))))))) THEN p.top_k_scores ELSE
        f.top_k_scores END AS top_k_scores, CASE WHEN (p.encoder_span_id IS NOT NULL
        AND (f.encoder_span_id IS NULL OR (p.top_k_labels IS NOT NULL AND
        f.top_k_labels IS NULL) OR ((p.top_k_labels IS NULL) = (f.top_k_labels IS
        NULL) AND (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') >
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
        f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
        p.encoder_index <= f.encoder_index))))))) THEN p.embedding_dim ELSE
        f.embedding_dim END AS embedding_dim, CASE WHEN (p.encoder_span_id IS NOT NULL
        AND (f.encoder_span_id IS NULL OR (p.top_k_labels IS NOT NULL AND
        f.top_k_labels IS NULL) OR ((p.top_k_labels IS NULL) = (f.top_k_labels IS
        NULL) AND (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') >
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
        f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
        p.encoder_index <= f.encoder_index))))))) THEN p.encoder_entropy ELSE
        f.encoder_entropy END AS encoder_entropy, CASE WHEN (p.encoder_span_id IS NOT
        NULL AND (f.encoder_span_id IS NULL OR (p.top_k_labels IS NOT NULL AND
        f.top_k_labels IS NULL) OR ((p.top_k_labels IS NULL) = (f.top_k_labels IS
        NULL) AND (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') >
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
        f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
        p.encoder_index <= f.encoder_index))))))) THEN p.encoder_image_sha256 ELSE
        f.encoder_image_sha256 END AS encoder_image_sha256, CASE WHEN
        (p.encoder_span_id IS NOT NULL AND (f.encoder_span_id IS NULL OR
        (p.top_k_labels IS NOT NULL AND f.top_k_labels IS NULL) OR ((p.top_k_labels IS
        NULL) = (f.top_k_labels IS NULL) AND (coalesce(p.encoder_start, TIMESTAMP_NS
        '1678-01-01') > coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
        f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
        p.encoder_index <= f.encoder_index))))))) THEN p.encoder_multi_label ELSE
        f.encoder_multi_label END AS encoder_multi_label, CASE WHEN (p.encoder_span_id
        IS NOT NULL AND (f.encoder_span_id IS NULL OR (p.top_k_labels IS NOT NULL AND
        f.top_k_labels IS NULL) OR ((p.top_k_labels IS NULL) = (f.top_k_labels IS
        NULL) AND (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') >
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
        coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
        f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
        p.encoder_index <= f.encoder_index))))))) THEN p.encoder_batch_size ELSE
        f.encoder_batch_size END AS encoder_batch_size, CASE WHEN (p.llm_span_id IS
        NOT NULL AND (f.llm_span_id IS NULL OR coalesce(p.llm_start, TIMESTAMP_NS
        '1678-01-01') > coalesce(f.llm_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.llm_start, TIMESTAMP_NS '1678-01-01') = coalesce(f.llm_start,
        TIMESTAMP_NS '1678-01-01') AND (p.llm_span_id < f.llm_span_id OR
        (p.llm_span_id = f.llm_span_id AND p.llm_index <= f.llm_index))))) THEN
        p.llm_span_id ELSE f.llm_span_id END AS llm_span_id, CASE WHEN (p.llm_span_id
        IS NOT NULL AND (f.llm_span_id IS NULL OR coalesce(p.llm_start, TIMESTAMP_NS
        '1678-01-01') > coalesce(f.llm_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.llm_start, TIMESTAMP_NS '1678-01-01') = coalesce(f.llm_start,
        TIMESTAMP_NS '1678-01-01') AND (p.llm_span_id < f.llm_span_id OR
        (p.llm_span_id = f.llm_span_id AND p.llm_index <= f.llm_index))))) THEN
        p.llm_index ELSE f.llm_index END AS llm_index, CASE WHEN (p.llm_span_id IS NOT
        NULL AND (f.llm_span_id IS NULL OR coalesce(p.llm_start, TIMESTAMP_NS
        '1678-01-01') > coalesce(f.llm_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.llm_start, TIMESTAMP_NS '1678-01-01') = coalesce(f.llm_start,
        TIMESTAMP_NS '1678-01-01') AND (p.llm_span_id < f.llm_span_id OR
        (p.llm_span_id = f.llm_span_id AND p.llm_index <= f.llm_index))))) THEN
        p.llm_start ELSE f.llm_start END AS llm_start, CASE WHEN (p.llm_span_id IS NOT
        NULL AND (f.llm_span_id IS NULL OR coalesce(p.llm_start, TIMESTAMP_NS
        '1678-01-01') > coalesce(f.llm_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.llm_start, TIMESTAMP_NS '1678-01-01') = coalesce(f.llm_start,
        TIMESTAMP_NS '1678-01-01') AND (p.llm_span_id < f.llm_span_id OR
        (p.llm_span_id = f.llm_span_id AND p.llm_index <= f.llm_index))))) THEN
        p.llm_ms ELSE f.llm_ms END AS llm_ms, CASE WHEN (p.llm_span_id IS NOT NULL AND
        (f.llm_span_id IS NULL OR coalesce(p.llm_start, TIMESTAMP_NS '1678-01-01') >
        coalesce(f.llm_start, TIMESTAMP_NS '1678-01-01') OR (coalesce(p.llm_start,
        TIMESTAMP_NS '1678-01-01') = coalesce(f.llm_start, TIMESTAMP_NS '1678-01-01')
        AND (p.llm_span_id < f.llm_span_id OR (p.llm_span_id = f.llm_span_id AND
        p.llm_index <= f.llm_index))))) THEN p.llm_status ELSE f.llm_status END AS
        llm_status, CASE WHEN (p.llm_span_id IS NOT NULL AND (f.llm_span_id IS NULL OR
        coalesce(p.llm_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.llm_start,
        TIMESTAMP_NS '1678-01-01') OR (coalesce(p.llm_start, TIMESTAMP_NS
        '1678-01-01') = coalesce(f.llm_start, TIMESTAMP_NS '1678-01-01') AND
        (p.llm_span_id < f.llm_span_id OR (p.llm_span_id = f.llm_span_id AND
        p.llm_index <= f.llm_index))))) THEN p.llm_model ELSE f.llm_model END AS
        llm_model, CASE WHEN (p.llm_span_id IS NOT NULL AND (f.llm_span_id IS NULL OR
        coalesce(p.llm_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.llm_start,
        TIMESTAMP_NS '1678-01-01') OR (coalesce(p.llm_start, TIMESTAMP_NS
        '1678-01-01') = coalesce(f.llm_start, TIMESTAMP_NS '1678-01-01') AND
        (p.llm_span_id < f.llm_span_id OR (p.llm_span_id = f.llm_span_id AND
        p.llm_index <= f.llm_index))))) THEN p.llm_instruction ELSE f.llm_instruction
        END AS llm_instruction, CASE WHEN (p.llm_span_id IS NOT NULL AND
        (f.llm_span_id IS NULL OR coalesce(p.llm_start, TIMESTAMP_NS '1678-01-01') >
        coalesce(f.llm_start, TIMESTAMP_NS '1678-01-01') OR (coalesce(p.llm_start,
        TIMESTAMP_NS '1678-01-01') = coalesce(f.llm_start, TIMESTAMP_NS '1678-01-01')
        AND (p.llm_span_id < f.llm_span_id OR (p.llm_span_id = f.llm_span_id AND
        p.llm_index <= f.llm_index))))) THEN p.output ELSE f.output END AS output,
        CASE WHEN (p.llm_span_id IS NOT NULL AND (f.llm_span_id IS NULL OR
        coalesce(p.llm_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.llm_start,
        TIMESTAMP_NS '1678-01-01') OR (coalesce(p.llm_start, TIMESTAMP_NS
        '1678-01-01') = coalesce(f.llm_start, TIMESTAMP_NS '1678-01-01') AND
        (p.llm_span_id < f.llm_span_id OR (p.llm_span_id = f.llm_span_id AND
        p.llm_index <= f.llm_index))))) THEN p.input_tokens ELSE f.input_tokens END AS
        input_tokens, CASE WHEN (p.llm_span_id IS NOT NULL AND (f.llm_span_id IS NULL
        OR coalesce(p.llm_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.llm_start,
        TIMESTAMP_NS '1678-01-01') OR (coalesce(p.llm_start, TIMESTAMP_NS
        '1678-01-01') = coalesce(f.llm_start, TIMESTAMP_NS '1678-01-01') AND
        (p.llm_span_id < f.llm_span_id OR (p.llm_span_id = f.llm_span_id AND
        p.llm_index <= f.llm_index))))) THEN p.output_tokens ELSE f.output_tokens END
        AS output_tokens, CASE WHEN (p.llm_span_id IS NOT NULL AND (f.llm_span_id IS
        NULL OR coalesce(p.llm_start, TIMESTAMP_NS '1678-01-01') >
        coalesce(f.llm_start, TIMESTAMP_NS '1678-01-01') OR (coalesce(p.llm_start,
        TIMESTAMP_NS '1678-01-01') = coalesce(f.llm_start, TIMESTAMP_NS '1678-01-01')
        AND (p.llm_span_id < f.llm_span_id OR (p.llm_span_id = f.llm_span_id AND
        p.llm_index <= f.llm_index))))) THEN p.llm_instruction_kind ELSE
        f.llm_instruction_kind END AS llm_instruction_kind, CASE WHEN (p.llm_span_id
        IS NOT NULL AND (f.llm_span_id IS NULL OR coalesce(p.llm_start, TIMESTAMP_NS
        '1678-01-01') > coalesce(f.llm_start, TIMESTAMP_NS '1678-01-01') OR
        (coalesce(p.llm_start, TIMESTAMP_NS '1678-01-01') = coalesce(f.llm_start,
        TIMESTAMP_NS '1678-01-01') AND (p.llm_span_id < f.llm_span_id OR
        (p.llm_span_id = f.llm_span_id AND p.llm_index <= f.llm_index))))) THEN
        p.llm_batch_size ELSE f.llm_batch_size END AS llm_batch_size, CASE WHEN
        (p.llm_span_id IS NOT NULL AND (f.llm_span_id IS NULL OR coalesce(p.llm_start,
        TIMESTAMP_NS '1678-01-01') > coalesce(f.llm_start, TIMESTAMP_NS '1678-01-01')
        OR (coalesce(p.llm_start, TIMESTAMP_NS '1678-01-01') = coalesce(f.llm_start,
        TIMESTAMP_NS '1678-01-01') AND (p.llm_span_id < f.llm_span_id OR
        (p.llm_span_id = f.llm_span_id AND p.llm_index <= f.llm_index))))) THEN
        p.llm_encoder_span_id ELSE f.llm_encoder_span_id END AS llm_encoder_span_id
        FROM pipeline_row_facts f
                           JOIN pipeline_row_parts p USING (trace_id, row_id))
    """,
)


_V10 = (
    """DELETE FROM pipeline_row_facts""",
    """DELETE FROM pipeline_row_parts""",
    """CREATE OR REPLACE TEMP TABLE _vlmscope_assembled AS WITH row_part AS (SELECT trace_id,
    row_id, span_id::VARCHAR AS row_span_id, 0::INTEGER AS row_index,
    start_time::TIMESTAMP_NS AS row_start, duration_ms::DOUBLE AS row_ms,
    status_code::VARCHAR AS row_status, status_message::VARCHAR AS row_error,
    run_name::VARCHAR AS run_name, cohort::VARCHAR AS cohort, expected::VARCHAR AS expected,
    objects::VARCHAR[] AS objects, instruction::VARCHAR AS row_instruction,
    image_sha256::VARCHAR AS row_image_sha256, instruction_kind::VARCHAR AS
    row_instruction_kind, batch_size::INTEGER AS row_batch_size FROM row_records WHERE
    row_id IS NOT NULL), llm_part AS (SELECT trace_id, row_id, unnest(picked) FROM (SELECT
    trace_id, row_id, arg_min(struct_pack(llm_span_id := span_id::VARCHAR, llm_index :=
    record_index::INTEGER, llm_start := start_time::TIMESTAMP_NS, llm_ms :=
    duration_ms::DOUBLE, llm_status := status_code::VARCHAR, llm_model := model::VARCHAR,
    llm_instruction := instruction::VARCHAR, output := output::VARCHAR, input_tokens :=
    input_tokens::BIGINT, output_tokens := output_tokens::BIGINT, llm_instruction_kind :=
    instruction_kind::VARCHAR, llm_batch_size := batch_size::INTEGER, llm_encoder_span_id :=
    encoder_span_id::VARCHAR), struct_pack(a := start_time IS NULL, b :=
    -epoch_ns(make_timestamp_ns(epoch_ns(start_time) + CASE WHEN isfinite(duration_ms) THEN
    CAST(floor(duration_ms * 1000000) AS BIGINT) ELSE 0 END)), c := span_id, d :=
    record_index)) AS picked FROM llm_records WHERE row_id IS NOT NULL GROUP BY trace_id,
    row_id)), encoder_part AS (SELECT trace_id, row_id, unnest(picked) FROM (SELECT
    trace_id, row_id, arg_min(struct_pack(encoder_span_id := span_id::VARCHAR, encoder_index
    := record_index::INTEGER, encoder_start := start_time::TIMESTAMP_NS, encoder_ms :=
    duration_ms::DOUBLE, encoder_status := status_code::VARCHAR, encoder_model :=
    model::VARCHAR, checkpoint_sha256 := checkpoint_sha256::VARCHAR, top_k_labels :=
    top_k_labels::VARCHAR[], top_k_scores := top_k_scores::DOUBLE[], embedding_dim :=
    embedding_dim::INTEGER, encoder_entropy := entropy::DOUBLE, encoder_image_sha256 :=
    image_sha256::VARCHAR, encoder_multi_label := multi_label::BOOLEAN, encoder_batch_size
    := batch_size::INTEGER), struct_pack(l := span_id IS DISTINCT FROM linked, p :=
    top_k_labels IS NULL, a := start_time IS NULL, b := -epoch_ns(start_time), c := span_id,
    d := record_index)) AS picked FROM (SELECT e.*, p.llm_encoder_span_id AS linked FROM
    encoder_records e LEFT JOIN llm_part p USING (trace_id, row_id)) WHERE row_id IS NOT
    NULL GROUP BY trace_id, row_id)) SELECT trace_id, row_id, row_part.row_span_id,
    row_part.row_index, row_part.row_start, row_part.row_ms, row_part.row_status,
    row_part.row_error, row_part.run_name, row_part.cohort, row_part.expected,
    row_part.objects, row_part.row_instruction, row_part.row_image_sha256,
    row_part.row_instruction_kind, row_part.row_batch_size, encoder_part.encoder_span_id,
    encoder_part.encoder_index, encoder_part.encoder_start, encoder_part.encoder_ms,
    encoder_part.encoder_status, encoder_part.encoder_model, encoder_part.checkpoint_sha256,
    encoder_part.top_k_labels, encoder_part.top_k_scores, encoder_part.embedding_dim,
    encoder_part.encoder_entropy, encoder_part.encoder_image_sha256,
    encoder_part.encoder_multi_label, encoder_part.encoder_batch_size, llm_part.llm_span_id,
    llm_part.llm_index, llm_part.llm_start, llm_part.llm_ms, llm_part.llm_status,
    llm_part.llm_model, llm_part.llm_instruction, llm_part.output, llm_part.input_tokens,
    llm_part.output_tokens, llm_part.llm_instruction_kind, llm_part.llm_batch_size,
    llm_part.llm_encoder_span_id FROM row_part FULL JOIN encoder_part USING (trace_id,
    row_id) FULL JOIN llm_part USING (trace_id, row_id)""",
    """INSERT INTO pipeline_row_facts SELECT * FROM _vlmscope_assembled WHERE row_span_id IS
    NOT NULL""",
    """INSERT INTO pipeline_row_parts SELECT * FROM _vlmscope_assembled WHERE row_span_id IS
    NULL""",
    """DROP TABLE _vlmscope_assembled""",
    """CREATE OR REPLACE VIEW pipeline_rows AS SELECT row_id, trace_id, row_span_id AS span_id,
    run_name AS run, cohort, coalesce(row_image_sha256, encoder_image_sha256) AS
    image_sha256, expected, objects, encoder_model, checkpoint_sha256, top_k_labels,
    top_k_scores, embedding_dim, encoder_entropy, llm_model, coalesce(llm_instruction,
    row_instruction) AS instruction, output, input_tokens, output_tokens, encoder_ms,
    llm_ms, row_ms, CASE WHEN 'ERROR' IN (row_status, encoder_status, llm_status) THEN
    'ERROR' ELSE 'OK' END AS status, row_error AS error, encoder_span_id, llm_span_id,
    row_start AS start_time, encoder_multi_label, coalesce(row_instruction_kind,
    llm_instruction_kind) AS instruction_kind, coalesce(row_batch_size, encoder_batch_size,
    llm_batch_size) AS batch_size, encoder_ms / greatest(coalesce(encoder_batch_size, 1), 1)
    AS encoder_share_ms, llm_ms / greatest(coalesce(llm_batch_size, 1), 1) AS llm_share_ms,
    CASE WHEN top_k_labels IS NULL THEN NULL::VARCHAR[] WHEN coalesce(encoder_multi_label,
    false) THEN list_filter(top_k_labels, lambda x, i: coalesce(top_k_scores[i], 0.0) >=
    0.5::DOUBLE) ELSE top_k_labels[1:1] END AS encoder_reading FROM pipeline_row_facts f
    WHERE NOT EXISTS (SELECT 1 FROM pipeline_row_parts p WHERE p.trace_id = f.trace_id AND
    p.row_id = f.row_id) UNION ALL SELECT row_id, trace_id, row_span_id AS span_id, run_name
    AS run, cohort, coalesce(row_image_sha256, encoder_image_sha256) AS image_sha256,
    expected, objects, encoder_model, checkpoint_sha256, top_k_labels, top_k_scores,
    embedding_dim, encoder_entropy, llm_model, coalesce(llm_instruction, row_instruction) AS
    instruction, output, input_tokens, output_tokens, encoder_ms, llm_ms, row_ms, CASE WHEN
    'ERROR' IN (row_status, encoder_status, llm_status) THEN 'ERROR' ELSE 'OK' END AS
    status, row_error AS error, encoder_span_id, llm_span_id, row_start AS start_time,
    encoder_multi_label, coalesce(row_instruction_kind, llm_instruction_kind) AS
    instruction_kind, coalesce(row_batch_size, encoder_batch_size, llm_batch_size) AS
    batch_size, encoder_ms / greatest(coalesce(encoder_batch_size, 1), 1) AS
    encoder_share_ms, llm_ms / greatest(coalesce(llm_batch_size, 1), 1) AS llm_share_ms,
    CASE WHEN top_k_labels IS NULL THEN NULL::VARCHAR[] WHEN coalesce(encoder_multi_label,
    false) THEN list_filter(top_k_labels, lambda x, i: coalesce(top_k_scores[i], 0.0) >=
    0.5::DOUBLE) ELSE top_k_labels[1:1] END AS encoder_reading FROM (SELECT f.trace_id,
    f.row_id, CASE WHEN (p.row_span_id IS NOT NULL AND (f.row_span_id IS NULL OR
    coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.row_start, TIMESTAMP_NS
    '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') =
    coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND (p.row_span_id < f.row_span_id OR
    (p.row_span_id = f.row_span_id AND p.row_index <= f.row_index))))) THEN p.row_span_id
    ELSE f.row_span_id END AS row_span_id, CASE WHEN (p.row_span_id IS NOT NULL AND
    (f.row_span_id IS NULL OR coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') >
    coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
    '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND (p.row_span_id <
    f.row_span_id OR (p.row_span_id = f.row_span_id AND p.row_index <= f.row_index))))) THEN
    p.row_index ELSE f.row_index END AS row_index, CASE WHEN (p.row_span_id IS NOT NULL AND
    (f.row_span_id IS NULL OR coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') >
    coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
    '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND (p.row_span_id <
    f.row_span_id OR (p.row_span_id = f.row_span_id AND p.row_index <= f.row_index))))) THEN
    p.row_start ELSE f.row_start END AS row_start, CASE WHEN (p.row_span_id IS NOT NULL AND
    (f.row_span_id IS NULL OR coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') >
    coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
    '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND (p.row_span_id <
    f.row_span_id OR (p.row_span_id = f.row_span_id AND p.row_index <= f.row_index))))) THEN
    p.row_ms ELSE f.row_ms END AS row_ms, CASE WHEN (p.row_span_id IS NOT NULL AND
    (f.row_span_id IS NULL OR coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') >
    coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
    '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND (p.row_span_id <
    f.row_span_id OR (p.row_span_id = f.row_span_id AND p.row_index <= f.row_index))))) THEN
    p.row_status ELSE f.row_status END AS row_status, CASE WHEN (p.row_span_id IS NOT NULL
    AND (f.row_span_id IS NULL OR coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') >
    coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
    '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND (p.row_span_id <
    f.row_span_id OR (p.row_span_id = f.row_span_id AND p.row_index <= f.row_index))))) THEN
    p.row_error ELSE f.row_error END AS row_error, CASE WHEN (p.row_span_id IS NOT NULL AND
    (f.row_span_id IS NULL OR coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') >
    coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
    '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND (p.row_span_id <
    f.row_span_id OR (p.row_span_id = f.row_span_id AND p.row_index <= f.row_index))))) THEN
    p.run_name ELSE f.run_name END AS run_name, CASE WHEN (p.row_span_id IS NOT NULL AND
    (f.row_span_id IS NULL OR coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') >
    coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
    '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND (p.row_span_id <
    f.row_span_id OR (p.row_span_id = f.row_span_id AND p.row_index <= f.row_index))))) THEN
    p.cohort ELSE f.cohort END AS cohort, CASE WHEN (p.row_span_id IS NOT NULL AND
    (f.row_span_id IS NULL OR coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') >
    coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
    '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND (p.row_span_id <
    f.row_span_id OR (p.row_span_id = f.row_span_id AND p.row_index <= f.row_index))))) THEN
    p.expected ELSE f.expected END AS expected, CASE WHEN (p.row_span_id IS NOT NULL AND
    (f.row_span_id IS NULL OR coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') >
    coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
    '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND (p.row_span_id <
    f.row_span_id OR (p.row_span_id = f.row_span_id AND p.row_index <= f.row_index))))) THEN
    p.objects ELSE f.objects END AS objects, CASE WHEN (p.row_span_id IS NOT NULL AND
    (f.row_span_id IS NULL OR coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') >
    coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
    '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND (p.row_span_id <
    f.row_span_id OR (p.row_span_id = f.row_span_id AND p.row_index <= f.row_index))))) THEN
    p.row_instruction ELSE f.row_instruction END AS row_instruction, CASE WHEN
    (p.row_span_id IS NOT NULL AND (f.row_span_id IS NULL OR coalesce(p.row_start,
    TIMESTAMP_NS '1678-01-01') > coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') OR
    (coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS
    '1678-01-01') AND (p.row_span_id < f.row_span_id OR (p.row_span_id = f.row_span_id AND
    p.row_index <= f.row_index))))) THEN p.row_image_sha256 ELSE f.row_image_sha256 END AS
    row_image_sha256, CASE WHEN (p.row_span_id IS NOT NULL AND (f.row_span_id IS NULL OR
    coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.row_start, TIMESTAMP_NS
    '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') =
    coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND (p.row_span_id < f.row_span_id OR
    (p.row_span_id = f.row_span_id AND p.row_index <= f.row_index))))) THEN
    p.row_instruction_kind ELSE f.row_instruction_kind END AS row_instruction_kind, CASE
    WHEN (p.row_span_id IS NOT NULL AND (f.row_span_id IS NULL OR coalesce(p.row_start,
    TIMESTAMP_NS '1678-01-01') > coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') OR
    (coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS
    '1678-01-01') AND (p.row_span_id < f.row_span_id OR (p.row_span_id = f.row_span_id AND
    p.row_index <= f.row_index))))) THEN p.row_batch_size ELSE f.row_batch_size END AS
    row_batch_size, CASE WHEN (p.encoder_span_id IS NOT NULL AND (f.encoder_span_id IS NULL
    OR (p.top_k_labels IS NOT NULL AND f.top_k_labels IS NULL) OR ((p.top_k_labels IS NULL)
    = (f.top_k_labels IS NULL) AND (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') >
    coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR (coalesce(p.encoder_start,
    TIMESTAMP_NS '1678-01-01') = coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND
    (p.encoder_span_id < f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
    p.encoder_index <= f.encoder_index))))))) THEN p.encoder_span_id ELSE f.encoder_span_id
    END AS encoder_span_id, CASE WHEN (p.encoder_span_id IS NOT NULL AND (f.encoder_span_id
    IS NULL OR (p.top_k_labels IS NOT NULL AND f.top_k_labels IS NULL) OR ((p.top_k_labels
    IS NULL) = (f.top_k_labels IS NULL) AND (coalesce(p.encoder_start, TIMESTAMP_NS
    '1678-01-01') > coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
    (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') = coalesce(f.encoder_start,
    TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id < f.encoder_span_id OR
    (p.encoder_span_id = f.encoder_span_id AND p.encoder_index <= f.encoder_index)))))))
    THEN p.encoder_index ELSE f.encoder_index END AS encoder_index, CASE WHEN
    (p.encoder_span_id IS NOT NULL AND (f.encoder_span_id IS NULL OR (p.top_k_labels IS NOT
    NULL AND f.top_k_labels IS NULL) OR ((p.top_k_labels IS NULL) = (f.top_k_labels IS NULL)
    AND (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.encoder_start,
    TIMESTAMP_NS '1678-01-01') OR (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
    coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
    f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND p.encoder_index <=
    f.encoder_index))))))) THEN p.encoder_start ELSE f.encoder_start END AS encoder_start,
    CASE WHEN (p.encoder_span_id IS NOT NULL AND (f.encoder_span_id IS NULL OR
    (p.top_k_labels IS NOT NULL AND f.top_k_labels IS NULL) OR ((p.top_k_labels IS NULL) =
    (f.top_k_labels IS NULL) AND (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') >
    coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR (coalesce(p.encoder_start,
    TIMESTAMP_NS '1678-01-01') = coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND
    (p.encoder_span_id < f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
    p.encoder_index <= f.encoder_index))))))) THEN p.encoder_ms ELSE f.encoder_ms END AS
    encoder_ms, CASE WHEN (p.encoder_span_id IS NOT NULL AND (f.encoder_span_id IS NULL OR
    (p.top_k_labels IS NOT NULL AND f.top_k_labels IS NULL) OR ((p.top_k_labels IS NULL) =
    (f.top_k_labels IS NULL) AND (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') >
    coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR (coalesce(p.encoder_start,
    TIMESTAMP_NS '1678-01-01') = coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND
    (p.encoder_span_id < f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
    p.encoder_index <= f.encoder_index))))))) THEN p.encoder_status ELSE f.encoder_status
    END AS encoder_status, CASE WHEN (p.encoder_span_id IS NOT NULL AND (f.encoder_span_id
    IS NULL OR (p.top_k_labels IS NOT NULL AND f.top_k_labels IS NULL) OR ((p.top_k_labels
    IS NULL) = (f.top_k_labels IS NULL) AND (coalesce(p.encoder_start, TIMESTAMP_NS
    '1678-01-01') > coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
    (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') = coalesce(f.encoder_start,
    TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id < f.encoder_span_id OR
    (p.encoder_span_id = f.encoder_span_id AND p.encoder_index <= f.encoder_index)))))))
    THEN p.encoder_model ELSE f.encoder_model END AS encoder_model, CASE WHEN
    (p.encoder_span_id IS NOT NULL AND (f.encoder_span_id IS NULL OR (p.top_k_labels IS NOT
    NULL AND f.top_k_labels IS NULL) OR ((p.top_k_labels IS NULL) = (f.top_k_labels IS NULL)
    AND (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.encoder_start,
    TIMESTAMP_NS '1678-01-01') OR (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
    coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
    f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND p.encoder_index <=
    f.encoder_index))))))) THEN p.checkpoint_sha256 ELSE f.checkpoint_sha256 END AS
    checkpoint_sha256, CASE WHEN (p.encoder_span_id IS NOT NULL AND (f.encoder_span_id IS
    NULL OR (p.top_k_labels IS NOT NULL AND f.top_k_labels IS NULL) OR ((p.top_k_labels IS
    NULL) = (f.top_k_labels IS NULL) AND (coalesce(p.encoder_start, TIMESTAMP_NS
    '1678-01-01') > coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
    (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') = coalesce(f.encoder_start,
    TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id < f.encoder_span_id OR
    (p.encoder_span_id = f.encoder_span_id AND p.encoder_index <= f.encoder_index)))))))
    THEN p.top_k_labels ELSE f.top_k_labels END AS top_k_labels, CASE WHEN
    (p.encoder_span_id IS NOT NULL AND (f.encoder_span_id IS NULL OR (p.top_k_labels IS NOT
    NULL AND f.top_k_labels IS NULL) OR ((p.top_k_labels IS NULL) = (f.top_k_labels IS NULL)
    AND (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.encoder_start,
    TIMESTAMP_NS '1678-01-01') OR (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
    coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
    f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND p.encoder_index <=
    f.encoder_index))))))) THEN p.top_k_scores ELSE f.top_k_scores END AS top_k_scores, CASE
    WHEN (p.encoder_span_id IS NOT NULL AND (f.encoder_span_id IS NULL OR (p.top_k_labels IS
    NOT NULL AND f.top_k_labels IS NULL) OR ((p.top_k_labels IS NULL) = (f.top_k_labels IS
    NULL) AND (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') >
    coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR (coalesce(p.encoder_start,
    TIMESTAMP_NS '1678-01-01') = coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND
    (p.encoder_span_id < f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
    p.encoder_index <= f.encoder_index))))))) THEN p.embedding_dim ELSE f.embedding_dim END
    AS embedding_dim, CASE WHEN (p.encoder_span_id IS NOT NULL AND (f.encoder_span_id IS
    NULL OR (p.top_k_labels IS NOT NULL AND f.top_k_labels IS NULL) OR ((p.top_k_labels IS
    NULL) = (f.top_k_labels IS NULL) AND (coalesce(p.encoder_start, TIMESTAMP_NS
    '1678-01-01') > coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
    (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') = coalesce(f.encoder_start,
    TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id < f.encoder_span_id OR
    (p.encoder_span_id = f.encoder_span_id AND p.encoder_index <= f.encoder_index)))))))
    THEN p.encoder_entropy ELSE f.encoder_entropy END AS encoder_entropy, CASE WHEN
    (p.encoder_span_id IS NOT NULL AND (f.encoder_span_id IS NULL OR (p.top_k_labels IS NOT
    NULL AND f.top_k_labels IS NULL) OR ((p.top_k_labels IS NULL) = (f.top_k_labels IS NULL)
    AND (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.encoder_start,
    TIMESTAMP_NS '1678-01-01') OR (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
    coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
    f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND p.encoder_index <=
    f.encoder_index))))))) THEN p.encoder_image_sha256 ELSE f.encoder_image_sha256 END AS
    encoder_image_sha256, CASE WHEN (p.encoder_span_id IS NOT NULL AND (f.encoder_span_id IS
    NULL OR (p.top_k_labels IS NOT NULL AND f.top_k_labels IS NULL) OR ((p.top_k_labels IS
    NULL) = (f.top_k_labels IS NULL) AND (coalesce(p.encoder_start, TIMESTAMP_NS
    '1678-01-01') > coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
    (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') = coalesce(f.encoder_start,
    TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id < f.encoder_span_id OR
    (p.encoder_span_id = f.encoder_span_id AND p.encoder_index <= f.encoder_index)))))))
    THEN p.encoder_multi_label ELSE f.encoder_multi_label END AS encoder_multi_label, CASE
    WHEN (p.encoder_span_id IS NOT NULL AND (f.encoder_span_id IS NULL OR (p.top_k_labels IS
    NOT NULL AND f.top_k_labels IS NULL) OR ((p.top_k_labels IS NULL) = (f.top_k_labels IS
    NULL) AND (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') >
    coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR (coalesce(p.encoder_start,
    TIMESTAMP_NS '1678-01-01') = coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND
    (p.encoder_span_id < f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
    p.encoder_index <= f.encoder_index))))))) THEN p.encoder_batch_size ELSE
    f.encoder_batch_size END AS encoder_batch_size, CASE WHEN (p.llm_span_id IS NOT NULL AND
    (f.llm_span_id IS NULL OR coalesce(make_timestamp_ns(epoch_ns(p.llm_start) + CASE WHEN
    isfinite(p.llm_ms) THEN CAST(floor(p.llm_ms * 1000000) AS BIGINT) ELSE 0 END),
    TIMESTAMP_NS '1678-01-01') > coalesce(make_timestamp_ns(epoch_ns(f.llm_start) + CASE
    WHEN isfinite(f.llm_ms) THEN CAST(floor(f.llm_ms * 1000000) AS BIGINT) ELSE 0 END),
    TIMESTAMP_NS '1678-01-01') OR (coalesce(make_timestamp_ns(epoch_ns(p.llm_start) + CASE
    WHEN isfinite(p.llm_ms) THEN CAST(floor(p.llm_ms * 1000000) AS BIGINT) ELSE 0 END),
    TIMESTAMP_NS '1678-01-01') = coalesce(make_timestamp_ns(epoch_ns(f.llm_start) + CASE
    WHEN isfinite(f.llm_ms) THEN CAST(floor(f.llm_ms * 1000000) AS BIGINT) ELSE 0 END),
    TIMESTAMP_NS '1678-01-01') AND (p.llm_span_id < f.llm_span_id OR (p.llm_span_id =
    f.llm_span_id AND p.llm_index <= f.llm_index))))) THEN p.llm_span_id ELSE f.llm_span_id
    END AS llm_span_id, CASE WHEN (p.llm_span_id IS NOT NULL AND (f.llm_span_id IS NULL OR
    coalesce(make_timestamp_ns(epoch_ns(p.llm_start) + CASE WHEN isfinite(p.llm_ms) THEN
    CAST(floor(p.llm_ms * 1000000) AS BIGINT) ELSE 0 END), TIMESTAMP_NS '1678-01-01') >
    coalesce(make_timestamp_ns(epoch_ns(f.llm_start) + CASE WHEN isfinite(f.llm_ms) THEN
    CAST(floor(f.llm_ms * 1000000) AS BIGINT) ELSE 0 END), TIMESTAMP_NS '1678-01-01') OR
    (coalesce(make_timestamp_ns(epoch_ns(p.llm_start) + CASE WHEN isfinite(p.llm_ms) THEN
    CAST(floor(p.llm_ms * 1000000) AS BIGINT) ELSE 0 END), TIMESTAMP_NS '1678-01-01') =
    coalesce(make_timestamp_ns(epoch_ns(f.llm_start) + CASE WHEN isfinite(f.llm_ms) THEN
    CAST(floor(f.llm_ms * 1000000) AS BIGINT) ELSE 0 END), TIMESTAMP_NS '1678-01-01') AND
    (p.llm_span_id < f.llm_span_id OR (p.llm_span_id = f.llm_span_id AND p.llm_index <=
    f.llm_index))))) THEN p.llm_index ELSE f.llm_index END AS llm_index, CASE WHEN
    (p.llm_span_id IS NOT NULL AND (f.llm_span_id IS NULL OR
    coalesce(make_timestamp_ns(epoch_ns(p.llm_start) + CASE WHEN isfinite(p.llm_ms) THEN
    CAST(floor(p.llm_ms * 1000000) AS BIGINT) ELSE 0 END), TIMESTAMP_NS '1678-01-01') >
    coalesce(make_timestamp_ns(epoch_ns(f.llm_start) + CASE WHEN isfinite(f.llm_ms) THEN
    CAST(floor(f.llm_ms * 1000000) AS BIGINT) ELSE 0 END), TIMESTAMP_NS '1678-01-01') OR
    (coalesce(make_timestamp_ns(epoch_ns(p.llm_start) + CASE WHEN isfinite(p.llm_ms) THEN
    CAST(floor(p.llm_ms * 1000000) AS BIGINT) ELSE 0 END), TIMESTAMP_NS '1678-01-01') =
    coalesce(make_timestamp_ns(epoch_ns(f.llm_start) + CASE WHEN isfinite(f.llm_ms) THEN
    CAST(floor(f.llm_ms * 1000000) AS BIGINT) ELSE 0 END), TIMESTAMP_NS '1678-01-01') AND
    (p.llm_span_id < f.llm_span_id OR (p.llm_span_id = f.llm_span_id AND p.llm_index <=
    f.llm_index))))) THEN p.llm_start ELSE f.llm_start END AS llm_start, CASE WHEN
    (p.llm_span_id IS NOT NULL AND (f.llm_span_id IS NULL OR
    coalesce(make_timestamp_ns(epoch_ns(p.llm_start) + CASE WHEN isfinite(p.llm_ms) THEN
    CAST(floor(p.llm_ms * 1000000) AS BIGINT) ELSE 0 END), TIMESTAMP_NS '1678-01-01') >
    coalesce(make_timestamp_ns(epoch_ns(f.llm_start) + CASE WHEN isfinite(f.llm_ms) THEN
    CAST(floor(f.llm_ms * 1000000) AS BIGINT) ELSE 0 END), TIMESTAMP_NS '1678-01-01') OR
    (coalesce(make_timestamp_ns(epoch_ns(p.llm_start) + CASE WHEN isfinite(p.llm_ms) THEN
    CAST(floor(p.llm_ms * 1000000) AS BIGINT) ELSE 0 END), TIMESTAMP_NS '1678-01-01') =
    coalesce(make_timestamp_ns(epoch_ns(f.llm_start) + CASE WHEN isfinite(f.llm_ms) THEN
    CAST(floor(f.llm_ms * 1000000) AS BIGINT) ELSE 0 END), TIMESTAMP_NS '1678-01-01') AND
    (p.llm_span_id < f.llm_span_id OR (p.llm_span_id = f.llm_span_id AND p.llm_index <=
    f.llm_index))))) THEN p.llm_ms ELSE f.llm_ms END AS llm_ms, CASE WHEN (p.llm_span_id IS
    NOT NULL AND (f.llm_span_id IS NULL OR coalesce(make_timestamp_ns(epoch_ns(p.llm_start)
    + CASE WHEN isfinite(p.llm_ms) THEN CAST(floor(p.llm_ms * 1000000) AS BIGINT) ELSE 0
    END), TIMESTAMP_NS '1678-01-01') > coalesce(make_timestamp_ns(epoch_ns(f.llm_start) +
    CASE WHEN isfinite(f.llm_ms) THEN CAST(floor(f.llm_ms * 1000000) AS BIGINT) ELSE 0 END),
    TIMESTAMP_NS '1678-01-01') OR (coalesce(make_timestamp_ns(epoch_ns(p.llm_start) + CASE
    WHEN isfinite(p.llm_ms) THEN CAST(floor(p.llm_ms * 1000000) AS BIGINT) ELSE 0 END),
    TIMESTAMP_NS '1678-01-01') = coalesce(make_timestamp_ns(epoch_ns(f.llm_start) + CASE
    WHEN isfinite(f.llm_ms) THEN CAST(floor(f.llm_ms * 1000000) AS BIGINT) ELSE 0 END),
    TIMESTAMP_NS '1678-01-01') AND (p.llm_span_id < f.llm_span_id OR (p.llm_span_id =
    f.llm_span_id AND p.llm_index <= f.llm_index))))) THEN p.llm_status ELSE f.llm_status
    END AS llm_status, CASE WHEN (p.llm_span_id IS NOT NULL AND (f.llm_span_id IS NULL OR
    coalesce(make_timestamp_ns(epoch_ns(p.llm_start) + CASE WHEN isfinite(p.llm_ms) THEN
    CAST(floor(p.llm_ms * 1000000) AS BIGINT) ELSE 0 END), TIMESTAMP_NS '1678-01-01') >
    coalesce(make_timestamp_ns(epoch_ns(f.llm_start) + CASE WHEN isfinite(f.llm_ms) THEN
    CAST(floor(f.llm_ms * 1000000) AS BIGINT) ELSE 0 END), TIMESTAMP_NS '1678-01-01') OR
    (coalesce(make_timestamp_ns(epoch_ns(p.llm_start) + CASE WHEN isfinite(p.llm_ms) THEN
    CAST(floor(p.llm_ms * 1000000) AS BIGINT) ELSE 0 END), TIMESTAMP_NS '1678-01-01') =
    coalesce(make_timestamp_ns(epoch_ns(f.llm_start) + CASE WHEN isfinite(f.llm_ms) THEN
    CAST(floor(f.llm_ms * 1000000) AS BIGINT) ELSE 0 END), TIMESTAMP_NS '1678-01-01') AND
    (p.llm_span_id < f.llm_span_id OR (p.llm_span_id = f.llm_span_id AND p.llm_index <=
    f.llm_index))))) THEN p.llm_model ELSE f.llm_model END AS llm_model, CASE WHEN
    (p.llm_span_id IS NOT NULL AND (f.llm_span_id IS NULL OR
    coalesce(make_timestamp_ns(epoch_ns(p.llm_start) + CASE WHEN isfinite(p.llm_ms) THEN
    CAST(floor(p.llm_ms * 1000000) AS BIGINT) ELSE 0 END), TIMESTAMP_NS '1678-01-01') >
    coalesce(make_timestamp_ns(epoch_ns(f.llm_start) + CASE WHEN isfinite(f.llm_ms) THEN
    CAST(floor(f.llm_ms * 1000000) AS BIGINT) ELSE 0 END), TIMESTAMP_NS '1678-01-01') OR
    (coalesce(make_timestamp_ns(epoch_ns(p.llm_start) + CASE WHEN isfinite(p.llm_ms) THEN
    CAST(floor(p.llm_ms * 1000000) AS BIGINT) ELSE 0 END), TIMESTAMP_NS '1678-01-01') =
    coalesce(make_timestamp_ns(epoch_ns(f.llm_start) + CASE WHEN isfinite(f.llm_ms) THEN
    CAST(floor(f.llm_ms * 1000000) AS BIGINT) ELSE 0 END), TIMESTAMP_NS '1678-01-01') AND
    (p.llm_span_id < f.llm_span_id OR (p.llm_span_id = f.llm_span_id AND p.llm_index <=
    f.llm_index))))) THEN p.llm_instruction ELSE f.llm_instruction END AS llm_instruction,
    CASE WHEN (p.llm_span_id IS NOT NULL AND (f.llm_span_id IS NULL OR
    coalesce(make_timestamp_ns(epoch_ns(p.llm_start) + CASE WHEN isfinite(p.llm_ms) THEN
    CAST(floor(p.llm_ms * 1000000) AS BIGINT) ELSE 0 END), TIMESTAMP_NS '1678-01-01') >
    coalesce(make_timestamp_ns(epoch_ns(f.llm_start) + CASE WHEN isfinite(f.llm_ms) THEN
    CAST(floor(f.llm_ms * 1000000) AS BIGINT) ELSE 0 END), TIMESTAMP_NS '1678-01-01') OR
    (coalesce(make_timestamp_ns(epoch_ns(p.llm_start) + CASE WHEN isfinite(p.llm_ms) THEN
    CAST(floor(p.llm_ms * 1000000) AS BIGINT) ELSE 0 END), TIMESTAMP_NS '1678-01-01') =
    coalesce(make_timestamp_ns(epoch_ns(f.llm_start) + CASE WHEN isfinite(f.llm_ms) THEN
    CAST(floor(f.llm_ms * 1000000) AS BIGINT) ELSE 0 END), TIMESTAMP_NS '1678-01-01') AND
    (p.llm_span_id < f.llm_span_id OR (p.llm_span_id = f.llm_span_id AND p.llm_index <=
    f.llm_index))))) THEN p.output ELSE f.output END AS output, CASE WHEN (p.llm_span_id IS
    NOT NULL AND (f.llm_span_id IS NULL OR coalesce(make_timestamp_ns(epoch_ns(p.llm_start)
    + CASE WHEN isfinite(p.llm_ms) THEN CAST(floor(p.llm_ms * 1000000) AS BIGINT) ELSE 0
    END), TIMESTAMP_NS '1678-01-01') > coalesce(make_timestamp_ns(epoch_ns(f.llm_start) +
    CASE WHEN isfinite(f.llm_ms) THEN CAST(floor(f.llm_ms * 1000000) AS BIGINT) ELSE 0 END),
    TIMESTAMP_NS '1678-01-01') OR (coalesce(make_timestamp_ns(epoch_ns(p.llm_start) + CASE
    WHEN isfinite(p.llm_ms) THEN CAST(floor(p.llm_ms * 1000000) AS BIGINT) ELSE 0 END),
    TIMESTAMP_NS '1678-01-01') = coalesce(make_timestamp_ns(epoch_ns(f.llm_start) + CASE
    WHEN isfinite(f.llm_ms) THEN CAST(floor(f.llm_ms * 1000000) AS BIGINT) ELSE 0 END),
    TIMESTAMP_NS '1678-01-01') AND (p.llm_span_id < f.llm_span_id OR (p.llm_span_id =
    f.llm_span_id AND p.llm_index <= f.llm_index))))) THEN p.input_tokens ELSE
    f.input_tokens END AS input_tokens, CASE WHEN (p.llm_span_id IS NOT NULL AND
    (f.llm_span_id IS NULL OR coalesce(make_timestamp_ns(epoch_ns(p.llm_start) + CASE WHEN
    isfinite(p.llm_ms) THEN CAST(floor(p.llm_ms * 1000000) AS BIGINT) ELSE 0 END),
    TIMESTAMP_NS '1678-01-01') > coalesce(make_timestamp_ns(epoch_ns(f.llm_start) + CASE
    WHEN isfinite(f.llm_ms) THEN CAST(floor(f.llm_ms * 1000000) AS BIGINT) ELSE 0 END),
    TIMESTAMP_NS '1678-01-01') OR (coalesce(make_timestamp_ns(epoch_ns(p.llm_start) + CASE
    WHEN isfinite(p.llm_ms) THEN CAST(floor(p.llm_ms * 1000000) AS BIGINT) ELSE 0 END),
    TIMESTAMP_NS '1678-01-01') = coalesce(make_timestamp_ns(epoch_ns(f.llm_start) + CASE
    WHEN isfinite(f.llm_ms) THEN CAST(floor(f.llm_ms * 1000000) AS BIGINT) ELSE 0 END),
    TIMESTAMP_NS '1678-01-01') AND (p.llm_span_id < f.llm_span_id OR (p.llm_span_id =
    f.llm_span_id AND p.llm_index <= f.llm_index))))) THEN p.output_tokens ELSE
    f.output_tokens END AS output_tokens, CASE WHEN (p.llm_span_id IS NOT NULL AND
    (f.llm_span_id IS NULL OR coalesce(make_timestamp_ns(epoch_ns(p.llm_start) + CASE WHEN
    isfinite(p.llm_ms) THEN CAST(floor(p.llm_ms * 1000000) AS BIGINT) ELSE 0 END),
    TIMESTAMP_NS '1678-01-01') > coalesce(make_timestamp_ns(epoch_ns(f.llm_start) + CASE
    WHEN isfinite(f.llm_ms) THEN CAST(floor(f.llm_ms * 1000000) AS BIGINT) ELSE 0 END),
    TIMESTAMP_NS '1678-01-01') OR (coalesce(make_timestamp_ns(epoch_ns(p.llm_start) + CASE
    WHEN isfinite(p.llm_ms) THEN CAST(floor(p.llm_ms * 1000000) AS BIGINT) ELSE 0 END),
    TIMESTAMP_NS '1678-01-01') = coalesce(make_timestamp_ns(epoch_ns(f.llm_start) + CASE
    WHEN isfinite(f.llm_ms) THEN CAST(floor(f.llm_ms * 1000000) AS BIGINT) ELSE 0 END),
    TIMESTAMP_NS '1678-01-01') AND (p.llm_span_id < f.llm_span_id OR (p.llm_span_id =
    f.llm_span_id AND p.llm_index <= f.llm_index))))) THEN p.llm_instruction_kind ELSE
    f.llm_instruction_kind END AS llm_instruction_kind, CASE WHEN (p.llm_span_id IS NOT NULL
    AND (f.llm_span_id IS NULL OR coalesce(make_timestamp_ns(epoch_ns(p.llm_start) + CASE
    WHEN isfinite(p.llm_ms) THEN CAST(floor(p.llm_ms * 1000000) AS BIGINT) ELSE 0 END),
    TIMESTAMP_NS '1678-01-01') > coalesce(make_timestamp_ns(epoch_ns(f.llm_start) + CASE
    WHEN isfinite(f.llm_ms) THEN CAST(floor(f.llm_ms * 1000000) AS BIGINT) ELSE 0 END),
    TIMESTAMP_NS '1678-01-01') OR (coalesce(make_timestamp_ns(epoch_ns(p.llm_start) + CASE
    WHEN isfinite(p.llm_ms) THEN CAST(floor(p.llm_ms * 1000000) AS BIGINT) ELSE 0 END),
    TIMESTAMP_NS '1678-01-01') = coalesce(make_timestamp_ns(epoch_ns(f.llm_start) + CASE
    WHEN isfinite(f.llm_ms) THEN CAST(floor(f.llm_ms * 1000000) AS BIGINT) ELSE 0 END),
    TIMESTAMP_NS '1678-01-01') AND (p.llm_span_id < f.llm_span_id OR (p.llm_span_id =
    f.llm_span_id AND p.llm_index <= f.llm_index))))) THEN p.llm_batch_size ELSE
    f.llm_batch_size END AS llm_batch_size, CASE WHEN (p.llm_span_id IS NOT NULL AND
    (f.llm_span_id IS NULL OR coalesce(make_timestamp_ns(epoch_ns(p.llm_start) + CASE WHEN
    isfinite(p.llm_ms) THEN CAST(floor(p.llm_ms * 1000000) AS BIGINT) ELSE 0 END),
    TIMESTAMP_NS '1678-01-01') > coalesce(make_timestamp_ns(epoch_ns(f.llm_start) + CASE
    WHEN isfinite(f.llm_ms) THEN CAST(floor(f.llm_ms * 1000000) AS BIGINT) ELSE 0 END),
    TIMESTAMP_NS '1678-01-01') OR (coalesce(make_timestamp_ns(epoch_ns(p.llm_start) + CASE
    WHEN isfinite(p.llm_ms) THEN CAST(floor(p.llm_ms * 1000000) AS BIGINT) ELSE 0 END),
    TIMESTAMP_NS '1678-01-01') = coalesce(make_timestamp_ns(epoch_ns(f.llm_start) + CASE
    WHEN isfinite(f.llm_ms) THEN CAST(floor(f.llm_ms * 1000000) AS BIGINT) ELSE 0 END),
    TIMESTAMP_NS '1678-01-01') AND (p.llm_span_id < f.llm_span_id OR (p.llm_span_id =
    f.llm_span_id AND p.llm_index <= f.llm_index))))) THEN p.llm_encoder_span_id ELSE
    f.llm_encoder_span_id END AS llm_encoder_span_id FROM pipeline_row_facts f JOIN
    pipeline_row_parts p USING (trace_id, row_id))""",
)

_V11 = (
    """CREATE OR REPLACE VIEW pipeline_rows AS SELECT row_id, trace_id, row_span_id AS span_id,
    run_name AS run, cohort, coalesce(row_image_sha256, encoder_image_sha256) AS
    image_sha256, expected, objects, encoder_model, checkpoint_sha256, top_k_labels,
    top_k_scores, embedding_dim, encoder_entropy, llm_model, coalesce(llm_instruction,
    row_instruction) AS instruction, output, input_tokens, output_tokens, encoder_ms,
    llm_ms, row_ms, CASE WHEN 'ERROR' IN (row_status, encoder_status, llm_status) THEN
    'ERROR' ELSE 'OK' END AS status, row_error AS error, encoder_span_id, llm_span_id,
    row_start AS start_time, encoder_multi_label, coalesce(row_instruction_kind,
    llm_instruction_kind) AS instruction_kind, coalesce(row_batch_size, encoder_batch_size,
    llm_batch_size) AS batch_size, encoder_ms / greatest(coalesce(encoder_batch_size, 1), 1)
    AS encoder_share_ms, llm_ms / greatest(coalesce(llm_batch_size, 1), 1) AS llm_share_ms,
    CASE WHEN top_k_labels IS NULL THEN NULL::VARCHAR[] WHEN coalesce(encoder_multi_label,
    false) THEN list_filter(top_k_labels, lambda x, i: coalesce(top_k_scores[i] >=
    0.5::DOUBLE AND NOT isnan(top_k_scores[i]), false)) ELSE top_k_labels[1:1] END AS
    encoder_reading FROM pipeline_row_facts f WHERE NOT EXISTS (SELECT 1 FROM
    pipeline_row_parts p WHERE p.trace_id = f.trace_id AND p.row_id = f.row_id) UNION ALL
    SELECT row_id, trace_id, row_span_id AS span_id, run_name AS run, cohort,
    coalesce(row_image_sha256, encoder_image_sha256) AS image_sha256, expected, objects,
    encoder_model, checkpoint_sha256, top_k_labels, top_k_scores, embedding_dim,
    encoder_entropy, llm_model, coalesce(llm_instruction, row_instruction) AS instruction,
    output, input_tokens, output_tokens, encoder_ms, llm_ms, row_ms, CASE WHEN 'ERROR' IN
    (row_status, encoder_status, llm_status) THEN 'ERROR' ELSE 'OK' END AS status, row_error
    AS error, encoder_span_id, llm_span_id, row_start AS start_time, encoder_multi_label,
    coalesce(row_instruction_kind, llm_instruction_kind) AS instruction_kind,
    coalesce(row_batch_size, encoder_batch_size, llm_batch_size) AS batch_size, encoder_ms /
    greatest(coalesce(encoder_batch_size, 1), 1) AS encoder_share_ms, llm_ms /
    greatest(coalesce(llm_batch_size, 1), 1) AS llm_share_ms, CASE WHEN top_k_labels IS NULL
    THEN NULL::VARCHAR[] WHEN coalesce(encoder_multi_label, false) THEN
    list_filter(top_k_labels, lambda x, i: coalesce(top_k_scores[i] >= 0.5::DOUBLE AND NOT
    isnan(top_k_scores[i]), false)) ELSE top_k_labels[1:1] END AS encoder_reading FROM
    (SELECT f.trace_id, f.row_id, CASE WHEN (p.row_span_id IS NOT NULL AND (f.row_span_id IS
    NULL OR coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.row_start,
    TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') =
    coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND (p.row_span_id < f.row_span_id OR
    (p.row_span_id = f.row_span_id AND p.row_index <= f.row_index))))) THEN p.row_span_id
    ELSE f.row_span_id END AS row_span_id, CASE WHEN (p.row_span_id IS NOT NULL AND
    (f.row_span_id IS NULL OR coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') >
    coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
    '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND (p.row_span_id <
    f.row_span_id OR (p.row_span_id = f.row_span_id AND p.row_index <= f.row_index))))) THEN
    p.row_index ELSE f.row_index END AS row_index, CASE WHEN (p.row_span_id IS NOT NULL AND
    (f.row_span_id IS NULL OR coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') >
    coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
    '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND (p.row_span_id <
    f.row_span_id OR (p.row_span_id = f.row_span_id AND p.row_index <= f.row_index))))) THEN
    p.row_start ELSE f.row_start END AS row_start, CASE WHEN (p.row_span_id IS NOT NULL AND
    (f.row_span_id IS NULL OR coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') >
    coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
    '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND (p.row_span_id <
    f.row_span_id OR (p.row_span_id = f.row_span_id AND p.row_index <= f.row_index))))) THEN
    p.row_ms ELSE f.row_ms END AS row_ms, CASE WHEN (p.row_span_id IS NOT NULL AND
    (f.row_span_id IS NULL OR coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') >
    coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
    '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND (p.row_span_id <
    f.row_span_id OR (p.row_span_id = f.row_span_id AND p.row_index <= f.row_index))))) THEN
    p.row_status ELSE f.row_status END AS row_status, CASE WHEN (p.row_span_id IS NOT NULL
    AND (f.row_span_id IS NULL OR coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') >
    coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
    '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND (p.row_span_id <
    f.row_span_id OR (p.row_span_id = f.row_span_id AND p.row_index <= f.row_index))))) THEN
    p.row_error ELSE f.row_error END AS row_error, CASE WHEN (p.row_span_id IS NOT NULL AND
    (f.row_span_id IS NULL OR coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') >
    coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
    '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND (p.row_span_id <
    f.row_span_id OR (p.row_span_id = f.row_span_id AND p.row_index <= f.row_index))))) THEN
    p.run_name ELSE f.run_name END AS run_name, CASE WHEN (p.row_span_id IS NOT NULL AND
    (f.row_span_id IS NULL OR coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') >
    coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
    '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND (p.row_span_id <
    f.row_span_id OR (p.row_span_id = f.row_span_id AND p.row_index <= f.row_index))))) THEN
    p.cohort ELSE f.cohort END AS cohort, CASE WHEN (p.row_span_id IS NOT NULL AND
    (f.row_span_id IS NULL OR coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') >
    coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
    '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND (p.row_span_id <
    f.row_span_id OR (p.row_span_id = f.row_span_id AND p.row_index <= f.row_index))))) THEN
    p.expected ELSE f.expected END AS expected, CASE WHEN (p.row_span_id IS NOT NULL AND
    (f.row_span_id IS NULL OR coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') >
    coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
    '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND (p.row_span_id <
    f.row_span_id OR (p.row_span_id = f.row_span_id AND p.row_index <= f.row_index))))) THEN
    p.objects ELSE f.objects END AS objects, CASE WHEN (p.row_span_id IS NOT NULL AND
    (f.row_span_id IS NULL OR coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') >
    coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS
    '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND (p.row_span_id <
    f.row_span_id OR (p.row_span_id = f.row_span_id AND p.row_index <= f.row_index))))) THEN
    p.row_instruction ELSE f.row_instruction END AS row_instruction, CASE WHEN
    (p.row_span_id IS NOT NULL AND (f.row_span_id IS NULL OR coalesce(p.row_start,
    TIMESTAMP_NS '1678-01-01') > coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') OR
    (coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS
    '1678-01-01') AND (p.row_span_id < f.row_span_id OR (p.row_span_id = f.row_span_id AND
    p.row_index <= f.row_index))))) THEN p.row_image_sha256 ELSE f.row_image_sha256 END AS
    row_image_sha256, CASE WHEN (p.row_span_id IS NOT NULL AND (f.row_span_id IS NULL OR
    coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.row_start, TIMESTAMP_NS
    '1678-01-01') OR (coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') =
    coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') AND (p.row_span_id < f.row_span_id OR
    (p.row_span_id = f.row_span_id AND p.row_index <= f.row_index))))) THEN
    p.row_instruction_kind ELSE f.row_instruction_kind END AS row_instruction_kind, CASE
    WHEN (p.row_span_id IS NOT NULL AND (f.row_span_id IS NULL OR coalesce(p.row_start,
    TIMESTAMP_NS '1678-01-01') > coalesce(f.row_start, TIMESTAMP_NS '1678-01-01') OR
    (coalesce(p.row_start, TIMESTAMP_NS '1678-01-01') = coalesce(f.row_start, TIMESTAMP_NS
    '1678-01-01') AND (p.row_span_id < f.row_span_id OR (p.row_span_id = f.row_span_id AND
    p.row_index <= f.row_index))))) THEN p.row_batch_size ELSE f.row_batch_size END AS
    row_batch_size, CASE WHEN (p.encoder_span_id IS NOT NULL AND (f.encoder_span_id IS NULL
    OR (p.top_k_labels IS NOT NULL AND f.top_k_labels IS NULL) OR ((p.top_k_labels IS NULL)
    = (f.top_k_labels IS NULL) AND (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') >
    coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR (coalesce(p.encoder_start,
    TIMESTAMP_NS '1678-01-01') = coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND
    (p.encoder_span_id < f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
    p.encoder_index <= f.encoder_index))))))) THEN p.encoder_span_id ELSE f.encoder_span_id
    END AS encoder_span_id, CASE WHEN (p.encoder_span_id IS NOT NULL AND (f.encoder_span_id
    IS NULL OR (p.top_k_labels IS NOT NULL AND f.top_k_labels IS NULL) OR ((p.top_k_labels
    IS NULL) = (f.top_k_labels IS NULL) AND (coalesce(p.encoder_start, TIMESTAMP_NS
    '1678-01-01') > coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
    (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') = coalesce(f.encoder_start,
    TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id < f.encoder_span_id OR
    (p.encoder_span_id = f.encoder_span_id AND p.encoder_index <= f.encoder_index)))))))
    THEN p.encoder_index ELSE f.encoder_index END AS encoder_index, CASE WHEN
    (p.encoder_span_id IS NOT NULL AND (f.encoder_span_id IS NULL OR (p.top_k_labels IS NOT
    NULL AND f.top_k_labels IS NULL) OR ((p.top_k_labels IS NULL) = (f.top_k_labels IS NULL)
    AND (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.encoder_start,
    TIMESTAMP_NS '1678-01-01') OR (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
    coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
    f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND p.encoder_index <=
    f.encoder_index))))))) THEN p.encoder_start ELSE f.encoder_start END AS encoder_start,
    CASE WHEN (p.encoder_span_id IS NOT NULL AND (f.encoder_span_id IS NULL OR
    (p.top_k_labels IS NOT NULL AND f.top_k_labels IS NULL) OR ((p.top_k_labels IS NULL) =
    (f.top_k_labels IS NULL) AND (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') >
    coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR (coalesce(p.encoder_start,
    TIMESTAMP_NS '1678-01-01') = coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND
    (p.encoder_span_id < f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
    p.encoder_index <= f.encoder_index))))))) THEN p.encoder_ms ELSE f.encoder_ms END AS
    encoder_ms, CASE WHEN (p.encoder_span_id IS NOT NULL AND (f.encoder_span_id IS NULL OR
    (p.top_k_labels IS NOT NULL AND f.top_k_labels IS NULL) OR ((p.top_k_labels IS NULL) =
    (f.top_k_labels IS NULL) AND (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') >
    coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR (coalesce(p.encoder_start,
    TIMESTAMP_NS '1678-01-01') = coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND
    (p.encoder_span_id < f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
    p.encoder_index <= f.encoder_index))))))) THEN p.encoder_status ELSE f.encoder_status
    END AS encoder_status, CASE WHEN (p.encoder_span_id IS NOT NULL AND (f.encoder_span_id
    IS NULL OR (p.top_k_labels IS NOT NULL AND f.top_k_labels IS NULL) OR ((p.top_k_labels
    IS NULL) = (f.top_k_labels IS NULL) AND (coalesce(p.encoder_start, TIMESTAMP_NS
    '1678-01-01') > coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
    (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') = coalesce(f.encoder_start,
    TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id < f.encoder_span_id OR
    (p.encoder_span_id = f.encoder_span_id AND p.encoder_index <= f.encoder_index)))))))
    THEN p.encoder_model ELSE f.encoder_model END AS encoder_model, CASE WHEN
    (p.encoder_span_id IS NOT NULL AND (f.encoder_span_id IS NULL OR (p.top_k_labels IS NOT
    NULL AND f.top_k_labels IS NULL) OR ((p.top_k_labels IS NULL) = (f.top_k_labels IS NULL)
    AND (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.encoder_start,
    TIMESTAMP_NS '1678-01-01') OR (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
    coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
    f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND p.encoder_index <=
    f.encoder_index))))))) THEN p.checkpoint_sha256 ELSE f.checkpoint_sha256 END AS
    checkpoint_sha256, CASE WHEN (p.encoder_span_id IS NOT NULL AND (f.encoder_span_id IS
    NULL OR (p.top_k_labels IS NOT NULL AND f.top_k_labels IS NULL) OR ((p.top_k_labels IS
    NULL) = (f.top_k_labels IS NULL) AND (coalesce(p.encoder_start, TIMESTAMP_NS
    '1678-01-01') > coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
    (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') = coalesce(f.encoder_start,
    TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id < f.encoder_span_id OR
    (p.encoder_span_id = f.encoder_span_id AND p.encoder_index <= f.encoder_index)))))))
    THEN p.top_k_labels ELSE f.top_k_labels END AS top_k_labels, CASE WHEN
    (p.encoder_span_id IS NOT NULL AND (f.encoder_span_id IS NULL OR (p.top_k_labels IS NOT
    NULL AND f.top_k_labels IS NULL) OR ((p.top_k_labels IS NULL) = (f.top_k_labels IS NULL)
    AND (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.encoder_start,
    TIMESTAMP_NS '1678-01-01') OR (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
    coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
    f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND p.encoder_index <=
    f.encoder_index))))))) THEN p.top_k_scores ELSE f.top_k_scores END AS top_k_scores, CASE
    WHEN (p.encoder_span_id IS NOT NULL AND (f.encoder_span_id IS NULL OR (p.top_k_labels IS
    NOT NULL AND f.top_k_labels IS NULL) OR ((p.top_k_labels IS NULL) = (f.top_k_labels IS
    NULL) AND (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') >
    coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR (coalesce(p.encoder_start,
    TIMESTAMP_NS '1678-01-01') = coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND
    (p.encoder_span_id < f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
    p.encoder_index <= f.encoder_index))))))) THEN p.embedding_dim ELSE f.embedding_dim END
    AS embedding_dim, CASE WHEN (p.encoder_span_id IS NOT NULL AND (f.encoder_span_id IS
    NULL OR (p.top_k_labels IS NOT NULL AND f.top_k_labels IS NULL) OR ((p.top_k_labels IS
    NULL) = (f.top_k_labels IS NULL) AND (coalesce(p.encoder_start, TIMESTAMP_NS
    '1678-01-01') > coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
    (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') = coalesce(f.encoder_start,
    TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id < f.encoder_span_id OR
    (p.encoder_span_id = f.encoder_span_id AND p.encoder_index <= f.encoder_index)))))))
    THEN p.encoder_entropy ELSE f.encoder_entropy END AS encoder_entropy, CASE WHEN
    (p.encoder_span_id IS NOT NULL AND (f.encoder_span_id IS NULL OR (p.top_k_labels IS NOT
    NULL AND f.top_k_labels IS NULL) OR ((p.top_k_labels IS NULL) = (f.top_k_labels IS NULL)
    AND (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') > coalesce(f.encoder_start,
    TIMESTAMP_NS '1678-01-01') OR (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') =
    coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id <
    f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND p.encoder_index <=
    f.encoder_index))))))) THEN p.encoder_image_sha256 ELSE f.encoder_image_sha256 END AS
    encoder_image_sha256, CASE WHEN (p.encoder_span_id IS NOT NULL AND (f.encoder_span_id IS
    NULL OR (p.top_k_labels IS NOT NULL AND f.top_k_labels IS NULL) OR ((p.top_k_labels IS
    NULL) = (f.top_k_labels IS NULL) AND (coalesce(p.encoder_start, TIMESTAMP_NS
    '1678-01-01') > coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR
    (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') = coalesce(f.encoder_start,
    TIMESTAMP_NS '1678-01-01') AND (p.encoder_span_id < f.encoder_span_id OR
    (p.encoder_span_id = f.encoder_span_id AND p.encoder_index <= f.encoder_index)))))))
    THEN p.encoder_multi_label ELSE f.encoder_multi_label END AS encoder_multi_label, CASE
    WHEN (p.encoder_span_id IS NOT NULL AND (f.encoder_span_id IS NULL OR (p.top_k_labels IS
    NOT NULL AND f.top_k_labels IS NULL) OR ((p.top_k_labels IS NULL) = (f.top_k_labels IS
    NULL) AND (coalesce(p.encoder_start, TIMESTAMP_NS '1678-01-01') >
    coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') OR (coalesce(p.encoder_start,
    TIMESTAMP_NS '1678-01-01') = coalesce(f.encoder_start, TIMESTAMP_NS '1678-01-01') AND
    (p.encoder_span_id < f.encoder_span_id OR (p.encoder_span_id = f.encoder_span_id AND
    p.encoder_index <= f.encoder_index))))))) THEN p.encoder_batch_size ELSE
    f.encoder_batch_size END AS encoder_batch_size, CASE WHEN (p.llm_span_id IS NOT NULL AND
    (f.llm_span_id IS NULL OR coalesce(make_timestamp_ns(epoch_ns(p.llm_start) + CASE WHEN
    isfinite(p.llm_ms) THEN CAST(floor(p.llm_ms * 1000000) AS BIGINT) ELSE 0 END),
    TIMESTAMP_NS '1678-01-01') > coalesce(make_timestamp_ns(epoch_ns(f.llm_start) + CASE
    WHEN isfinite(f.llm_ms) THEN CAST(floor(f.llm_ms * 1000000) AS BIGINT) ELSE 0 END),
    TIMESTAMP_NS '1678-01-01') OR (coalesce(make_timestamp_ns(epoch_ns(p.llm_start) + CASE
    WHEN isfinite(p.llm_ms) THEN CAST(floor(p.llm_ms * 1000000) AS BIGINT) ELSE 0 END),
    TIMESTAMP_NS '1678-01-01') = coalesce(make_timestamp_ns(epoch_ns(f.llm_start) + CASE
    WHEN isfinite(f.llm_ms) THEN CAST(floor(f.llm_ms * 1000000) AS BIGINT) ELSE 0 END),
    TIMESTAMP_NS '1678-01-01') AND (p.llm_span_id < f.llm_span_id OR (p.llm_span_id =
    f.llm_span_id AND p.llm_index <= f.llm_index))))) THEN p.llm_span_id ELSE f.llm_span_id
    END AS llm_span_id, CASE WHEN (p.llm_span_id IS NOT NULL AND (f.llm_span_id IS NULL OR
    coalesce(make_timestamp_ns(epoch_ns(p.llm_start) + CASE WHEN isfinite(p.llm_ms) THEN
    CAST(floor(p.llm_ms * 1000000) AS BIGINT) ELSE 0 END), TIMESTAMP_NS '1678-01-01') >
    coalesce(make_timestamp_ns(epoch_ns(f.llm_start) + CASE WHEN isfinite(f.llm_ms) THEN
    CAST(floor(f.llm_ms * 1000000) AS BIGINT) ELSE 0 END), TIMESTAMP_NS '1678-01-01') OR
    (coalesce(make_timestamp_ns(epoch_ns(p.llm_start) + CASE WHEN isfinite(p.llm_ms) THEN
    CAST(floor(p.llm_ms * 1000000) AS BIGINT) ELSE 0 END), TIMESTAMP_NS '1678-01-01') =
    coalesce(make_timestamp_ns(epoch_ns(f.llm_start) + CASE WHEN isfinite(f.llm_ms) THEN
    CAST(floor(f.llm_ms * 1000000) AS BIGINT) ELSE 0 END), TIMESTAMP_NS '1678-01-01') AND
    (p.llm_span_id < f.llm_span_id OR (p.llm_span_id = f.llm_span_id AND p.llm_index <=
    f.llm_index))))) THEN p.llm_index ELSE f.llm_index END AS llm_index, CASE WHEN
    (p.llm_span_id IS NOT NULL AND (f.llm_span_id IS NULL OR
    coalesce(make_timestamp_ns(epoch_ns(p.llm_start) + CASE WHEN isfinite(p.llm_ms) THEN
    CAST(floor(p.llm_ms * 1000000) AS BIGINT) ELSE 0 END), TIMESTAMP_NS '1678-01-01') >
    coalesce(make_timestamp_ns(epoch_ns(f.llm_start) + CASE WHEN isfinite(f.llm_ms) THEN
    CAST(floor(f.llm_ms * 1000000) AS BIGINT) ELSE 0 END), TIMESTAMP_NS '1678-01-01') OR
    (coalesce(make_timestamp_ns(epoch_ns(p.llm_start) + CASE WHEN isfinite(p.llm_ms) THEN
    CAST(floor(p.llm_ms * 1000000) AS BIGINT) ELSE 0 END), TIMESTAMP_NS '1678-01-01') =
    coalesce(make_timestamp_ns(epoch_ns(f.llm_start) + CASE WHEN isfinite(f.llm_ms) THEN
    CAST(floor(f.llm_ms * 1000000) AS BIGINT) ELSE 0 END), TIMESTAMP_NS '1678-01-01') AND
    (p.llm_span_id < f.llm_span_id OR (p.llm_span_id = f.llm_span_id AND p.llm_index <=
    f.llm_index))))) THEN p.llm_start ELSE f.llm_start END AS llm_start, CASE WHEN
    (p.llm_span_id IS NOT NULL AND (f.llm_span_id IS NULL OR
    coalesce(make_timestamp_ns(epoch_ns(p.llm_start) + CASE WHEN isfinite(p.llm_ms) THEN
    CAST(floor(p.llm_ms * 1000000) AS BIGINT) ELSE 0 END), TIMESTAMP_NS '1678-01-01') >
    coalesce(make_timestamp_ns(epoch_ns(f.llm_start) + CASE WHEN isfinite(f.llm_ms) THEN
    CAST(floor(f.llm_ms * 1000000) AS BIGINT) ELSE 0 END), TIMESTAMP_NS '1678-01-01') OR
    (coalesce(make_timestamp_ns(epoch_ns(p.llm_start) + CASE WHEN isfinite(p.llm_ms) THEN
    CAST(floor(p.llm_ms * 1000000) AS BIGINT) ELSE 0 END), TIMESTAMP_NS '1678-01-01') =
    coalesce(make_timestamp_ns(epoch_ns(f.llm_start) + CASE WHEN isfinite(f.llm_ms) THEN
    CAST(floor(f.llm_ms * 1000000) AS BIGINT) ELSE 0 END), TIMESTAMP_NS '1678-01-01') AND
    (p.llm_span_id < f.llm_span_id OR (p.llm_span_id = f.llm_span_id AND p.llm_index <=
    f.llm_index))))) THEN p.llm_ms ELSE f.llm_ms END AS llm_ms, CASE WHEN (p.llm_span_id IS
    NOT NULL AND (f.llm_span_id IS NULL OR coalesce(make_timestamp_ns(epoch_ns(p.llm_start)
    + CASE WHEN isfinite(p.llm_ms) THEN CAST(floor(p.llm_ms * 1000000) AS BIGINT) ELSE 0
    END), TIMESTAMP_NS '1678-01-01') > coalesce(make_timestamp_ns(epoch_ns(f.llm_start) +
    CASE WHEN isfinite(f.llm_ms) THEN CAST(floor(f.llm_ms * 1000000) AS BIGINT) ELSE 0 END),
    TIMESTAMP_NS '1678-01-01') OR (coalesce(make_timestamp_ns(epoch_ns(p.llm_start) + CASE
    WHEN isfinite(p.llm_ms) THEN CAST(floor(p.llm_ms * 1000000) AS BIGINT) ELSE 0 END),
    TIMESTAMP_NS '1678-01-01') = coalesce(make_timestamp_ns(epoch_ns(f.llm_start) + CASE
    WHEN isfinite(f.llm_ms) THEN CAST(floor(f.llm_ms * 1000000) AS BIGINT) ELSE 0 END),
    TIMESTAMP_NS '1678-01-01') AND (p.llm_span_id < f.llm_span_id OR (p.llm_span_id =
    f.llm_span_id AND p.llm_index <= f.llm_index))))) THEN p.llm_status ELSE f.llm_status
    END AS llm_status, CASE WHEN (p.llm_span_id IS NOT NULL AND (f.llm_span_id IS NULL OR
    coalesce(make_timestamp_ns(epoch_ns(p.llm_start) + CASE WHEN isfinite(p.llm_ms) THEN
    CAST(floor(p.llm_ms * 1000000) AS BIGINT) ELSE 0 END), TIMESTAMP_NS '1678-01-01') >
    coalesce(make_timestamp_ns(epoch_ns(f.llm_start) + CASE WHEN isfinite(f.llm_ms) THEN
    CAST(floor(f.llm_ms * 1000000) AS BIGINT) ELSE 0 END), TIMESTAMP_NS '1678-01-01') OR
    (coalesce(make_timestamp_ns(epoch_ns(p.llm_start) + CASE WHEN isfinite(p.llm_ms) THEN
    CAST(floor(p.llm_ms * 1000000) AS BIGINT) ELSE 0 END), TIMESTAMP_NS '1678-01-01') =
    coalesce(make_timestamp_ns(epoch_ns(f.llm_start) + CASE WHEN isfinite(f.llm_ms) THEN
    CAST(floor(f.llm_ms * 1000000) AS BIGINT) ELSE 0 END), TIMESTAMP_NS '1678-01-01') AND
    (p.llm_span_id < f.llm_span_id OR (p.llm_span_id = f.llm_span_id AND p.llm_index <=
    f.llm_index))))) THEN p.llm_model ELSE f.llm_model END AS llm_model, CASE WHEN
    (p.llm_span_id IS NOT NULL AND (f.llm_span_id IS NULL OR
    coalesce(make_timestamp_ns(epoch_ns(p.llm_start) + CASE WHEN isfinite(p.llm_ms) THEN
    CAST(floor(p.llm_ms * 1000000) AS BIGINT) ELSE 0 END), TIMESTAMP_NS '1678-01-01') >
    coalesce(make_timestamp_ns(epoch_ns(f.llm_start) + CASE WHEN isfinite(f.llm_ms) THEN
    CAST(floor(f.llm_ms * 1000000) AS BIGINT) ELSE 0 END), TIMESTAMP_NS '1678-01-01') OR
    (coalesce(make_timestamp_ns(epoch_ns(p.llm_start) + CASE WHEN isfinite(p.llm_ms) THEN
    CAST(floor(p.llm_ms * 1000000) AS BIGINT) ELSE 0 END), TIMESTAMP_NS '1678-01-01') =
    coalesce(make_timestamp_ns(epoch_ns(f.llm_start) + CASE WHEN isfinite(f.llm_ms) THEN
    CAST(floor(f.llm_ms * 1000000) AS BIGINT) ELSE 0 END), TIMESTAMP_NS '1678-01-01') AND
    (p.llm_span_id < f.llm_span_id OR (p.llm_span_id = f.llm_span_id AND p.llm_index <=
    f.llm_index))))) THEN p.llm_instruction ELSE f.llm_instruction END AS llm_instruction,
    CASE WHEN (p.llm_span_id IS NOT NULL AND (f.llm_span_id IS NULL OR
    coalesce(make_timestamp_ns(epoch_ns(p.llm_start) + CASE WHEN isfinite(p.llm_ms) THEN
    CAST(floor(p.llm_ms * 1000000) AS BIGINT) ELSE 0 END), TIMESTAMP_NS '1678-01-01') >
    coalesce(make_timestamp_ns(epoch_ns(f.llm_start) + CASE WHEN isfinite(f.llm_ms) THEN
    CAST(floor(f.llm_ms * 1000000) AS BIGINT) ELSE 0 END), TIMESTAMP_NS '1678-01-01') OR
    (coalesce(make_timestamp_ns(epoch_ns(p.llm_start) + CASE WHEN isfinite(p.llm_ms) THEN
    CAST(floor(p.llm_ms * 1000000) AS BIGINT) ELSE 0 END), TIMESTAMP_NS '1678-01-01') =
    coalesce(make_timestamp_ns(epoch_ns(f.llm_start) + CASE WHEN isfinite(f.llm_ms) THEN
    CAST(floor(f.llm_ms * 1000000) AS BIGINT) ELSE 0 END), TIMESTAMP_NS '1678-01-01') AND
    (p.llm_span_id < f.llm_span_id OR (p.llm_span_id = f.llm_span_id AND p.llm_index <=
    f.llm_index))))) THEN p.output ELSE f.output END AS output, CASE WHEN (p.llm_span_id IS
    NOT NULL AND (f.llm_span_id IS NULL OR coalesce(make_timestamp_ns(epoch_ns(p.llm_start)
    + CASE WHEN isfinite(p.llm_ms) THEN CAST(floor(p.llm_ms * 1000000) AS BIGINT) ELSE 0
    END), TIMESTAMP_NS '1678-01-01') > coalesce(make_timestamp_ns(epoch_ns(f.llm_start) +
    CASE WHEN isfinite(f.llm_ms) THEN CAST(floor(f.llm_ms * 1000000) AS BIGINT) ELSE 0 END),
    TIMESTAMP_NS '1678-01-01') OR (coalesce(make_timestamp_ns(epoch_ns(p.llm_start) + CASE
    WHEN isfinite(p.llm_ms) THEN CAST(floor(p.llm_ms * 1000000) AS BIGINT) ELSE 0 END),
    TIMESTAMP_NS '1678-01-01') = coalesce(make_timestamp_ns(epoch_ns(f.llm_start) + CASE
    WHEN isfinite(f.llm_ms) THEN CAST(floor(f.llm_ms * 1000000) AS BIGINT) ELSE 0 END),
    TIMESTAMP_NS '1678-01-01') AND (p.llm_span_id < f.llm_span_id OR (p.llm_span_id =
    f.llm_span_id AND p.llm_index <= f.llm_index))))) THEN p.input_tokens ELSE
    f.input_tokens END AS input_tokens, CASE WHEN (p.llm_span_id IS NOT NULL AND
    (f.llm_span_id IS NULL OR coalesce(make_timestamp_ns(epoch_ns(p.llm_start) + CASE WHEN
    isfinite(p.llm_ms) THEN CAST(floor(p.llm_ms * 1000000) AS BIGINT) ELSE 0 END),
    TIMESTAMP_NS '1678-01-01') > coalesce(make_timestamp_ns(epoch_ns(f.llm_start) + CASE
    WHEN isfinite(f.llm_ms) THEN CAST(floor(f.llm_ms * 1000000) AS BIGINT) ELSE 0 END),
    TIMESTAMP_NS '1678-01-01') OR (coalesce(make_timestamp_ns(epoch_ns(p.llm_start) + CASE
    WHEN isfinite(p.llm_ms) THEN CAST(floor(p.llm_ms * 1000000) AS BIGINT) ELSE 0 END),
    TIMESTAMP_NS '1678-01-01') = coalesce(make_timestamp_ns(epoch_ns(f.llm_start) + CASE
    WHEN isfinite(f.llm_ms) THEN CAST(floor(f.llm_ms * 1000000) AS BIGINT) ELSE 0 END),
    TIMESTAMP_NS '1678-01-01') AND (p.llm_span_id < f.llm_span_id OR (p.llm_span_id =
    f.llm_span_id AND p.llm_index <= f.llm_index))))) THEN p.output_tokens ELSE
    f.output_tokens END AS output_tokens, CASE WHEN (p.llm_span_id IS NOT NULL AND
    (f.llm_span_id IS NULL OR coalesce(make_timestamp_ns(epoch_ns(p.llm_start) + CASE WHEN
    isfinite(p.llm_ms) THEN CAST(floor(p.llm_ms * 1000000) AS BIGINT) ELSE 0 END),
    TIMESTAMP_NS '1678-01-01') > coalesce(make_timestamp_ns(epoch_ns(f.llm_start) + CASE
    WHEN isfinite(f.llm_ms) THEN CAST(floor(f.llm_ms * 1000000) AS BIGINT) ELSE 0 END),
    TIMESTAMP_NS '1678-01-01') OR (coalesce(make_timestamp_ns(epoch_ns(p.llm_start) + CASE
    WHEN isfinite(p.llm_ms) THEN CAST(floor(p.llm_ms * 1000000) AS BIGINT) ELSE 0 END),
    TIMESTAMP_NS '1678-01-01') = coalesce(make_timestamp_ns(epoch_ns(f.llm_start) + CASE
    WHEN isfinite(f.llm_ms) THEN CAST(floor(f.llm_ms * 1000000) AS BIGINT) ELSE 0 END),
    TIMESTAMP_NS '1678-01-01') AND (p.llm_span_id < f.llm_span_id OR (p.llm_span_id =
    f.llm_span_id AND p.llm_index <= f.llm_index))))) THEN p.llm_instruction_kind ELSE
    f.llm_instruction_kind END AS llm_instruction_kind, CASE WHEN (p.llm_span_id IS NOT NULL
    AND (f.llm_span_id IS NULL OR coalesce(make_timestamp_ns(epoch_ns(p.llm_start) + CASE
    WHEN isfinite(p.llm_ms) THEN CAST(floor(p.llm_ms * 1000000) AS BIGINT) ELSE 0 END),
    TIMESTAMP_NS '1678-01-01') > coalesce(make_timestamp_ns(epoch_ns(f.llm_start) + CASE
    WHEN isfinite(f.llm_ms) THEN CAST(floor(f.llm_ms * 1000000) AS BIGINT) ELSE 0 END),
    TIMESTAMP_NS '1678-01-01') OR (coalesce(make_timestamp_ns(epoch_ns(p.llm_start) + CASE
    WHEN isfinite(p.llm_ms) THEN CAST(floor(p.llm_ms * 1000000) AS BIGINT) ELSE 0 END),
    TIMESTAMP_NS '1678-01-01') = coalesce(make_timestamp_ns(epoch_ns(f.llm_start) + CASE
    WHEN isfinite(f.llm_ms) THEN CAST(floor(f.llm_ms * 1000000) AS BIGINT) ELSE 0 END),
    TIMESTAMP_NS '1678-01-01') AND (p.llm_span_id < f.llm_span_id OR (p.llm_span_id =
    f.llm_span_id AND p.llm_index <= f.llm_index))))) THEN p.llm_batch_size ELSE
    f.llm_batch_size END AS llm_batch_size, CASE WHEN (p.llm_span_id IS NOT NULL AND
    (f.llm_span_id IS NULL OR coalesce(make_timestamp_ns(epoch_ns(p.llm_start) + CASE WHEN
    isfinite(p.llm_ms) THEN CAST(floor(p.llm_ms * 1000000) AS BIGINT) ELSE 0 END),
    TIMESTAMP_NS '1678-01-01') > coalesce(make_timestamp_ns(epoch_ns(f.llm_start) + CASE
    WHEN isfinite(f.llm_ms) THEN CAST(floor(f.llm_ms * 1000000) AS BIGINT) ELSE 0 END),
    TIMESTAMP_NS '1678-01-01') OR (coalesce(make_timestamp_ns(epoch_ns(p.llm_start) + CASE
    WHEN isfinite(p.llm_ms) THEN CAST(floor(p.llm_ms * 1000000) AS BIGINT) ELSE 0 END),
    TIMESTAMP_NS '1678-01-01') = coalesce(make_timestamp_ns(epoch_ns(f.llm_start) + CASE
    WHEN isfinite(f.llm_ms) THEN CAST(floor(f.llm_ms * 1000000) AS BIGINT) ELSE 0 END),
    TIMESTAMP_NS '1678-01-01') AND (p.llm_span_id < f.llm_span_id OR (p.llm_span_id =
    f.llm_span_id AND p.llm_index <= f.llm_index))))) THEN p.llm_encoder_span_id ELSE
    f.llm_encoder_span_id END AS llm_encoder_span_id FROM pipeline_row_facts f JOIN
    pipeline_row_parts p USING (trace_id, row_id))""",
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, 'spans, embeddings, per-row records and pipeline_rows', _V1),
    Migration(2, 'evaluations and eval_runs', _V2),
    Migration(3, 'datasets, dataset rows and images, dataset runs', _V3),
    Migration(4, 'pipeline_rows materialised at ingest', _V4),
    Migration(5, 'zstd compression for span JSON and evaluation text', _V5),
    Migration(6, 'eval_runs.run_name: the named run an evaluation was restricted to', _V6),
    Migration(7, 'pipeline_rows: encoder_multi_label, instruction_kind, batch size and shares',
              _V7),
    Migration(8, 'llm_records.response_model; pipeline rows refilled: the linked encoder record '
              'first, then one with a reading', _V8),
    Migration(9, 'pipeline_rows.encoder_reading; dataset_rows.instruction_kind', _V9),
    Migration(10, "pipeline rows refilled: the row's answer is the LLM call that ended last",
              _V10),
    Migration(11, "pipeline_rows.encoder_reading: a NaN score is not read", _V11),
)
"""Every schema step, in order."""
