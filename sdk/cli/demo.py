"""``vlmscope demo``: run the demo pipeline into a store and show what landed."""

from __future__ import annotations

import argparse
import os
import sys

from vlmscope.cli import CommandError
from vlmscope.cli.output import render
from vlmscope.cli.progress import ProgressBar
from vlmscope.settings import DEFAULT_DB

SUMMARY_QUERIES = {
    "Rows per cohort": """
        SELECT cohort, count(*) AS rows, any_value(encoder_model) AS encoder,
               left(any_value(checkpoint_sha256), 12) AS checkpoint,
               any_value(llm_model) AS llm, round(avg(encoder_ms), 1) AS encoder_ms,
               round(avg(llm_ms), 1) AS llm_ms
        FROM pipeline_rows GROUP BY cohort ORDER BY cohort""",
    "A few rows: what the encoder read and what the head answered": """
        SELECT row_id, expected, top_k_labels, round(top_k_scores[1], 3) AS top1_score,
               output, input_tokens, output_tokens, status
        FROM pipeline_rows ORDER BY row_id LIMIT 8""",
    "Encoder top-1 against the expected digit": """
        SELECT count(*) FILTER (WHERE top_k_labels[1] = expected) AS top1_right,
               count(*) FILTER (WHERE expected IS NOT NULL) AS with_expected
        FROM pipeline_rows""",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``demo`` to the CLI."""
    parser = subparsers.add_parser(
        "demo", help="trace a real ResNet -> language-head pipeline and show what landed",
        description="Build a torchvision ResNet-18 and a small GPT-2 from config (offline), "
        "run real images (scikit-learn's digit scans and sample photos) through them under "
        "tracing, and print what landed in the store via SQL.",
    )
    parser.add_argument("--db", default=os.environ.get("VLMSCOPE_DB", DEFAULT_DB),
                        help="the DuckDB store to write (default: vlmscope.duckdb)")
    parser.add_argument("--rows", type=int, default=64, help="digit images to trace")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Handle ``vlmscope demo``."""
    from vlmscope._optional import MissingExtraError

    if args.rows < 1:
        raise CommandError("--rows must be at least 1")
    try:
        from vlmscope.cli.sql import query_store
        from vlmscope.demo import run_pipeline

        bar = ProgressBar("tracing rows", stream=sys.stderr)
        result = run_pipeline(args.db, limit=args.rows, progress=bar.update)
        bar.close()
    except MissingExtraError as error:
        raise CommandError(str(error)) from error
    stats = result["stats"]
    print(f"Traced {result['rows']} rows in {result['seconds']:.1f} s into {args.db} "
          f"({stats.exported_spans} spans written, {stats.failed_spans} lost).\n")
    for title, query in SUMMARY_QUERIES.items():
        columns, rows = query_store(args.db, query, 30.0)
        print(f"{title}:\n{render(columns, rows, 'table')}\n")
    print(f"Query it yourself: vlmscope sql --db {args.db} \"SELECT * FROM pipeline_rows\"")
    return 0
