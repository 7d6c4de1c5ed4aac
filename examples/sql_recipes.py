"""(d) SQL recipes over a store: worst classes, rows where the encoder was right and the head
wrong, latency by checkpoint, hallucinated objects by frequency.

Run after `vlmscope demo`: python examples/sql_recipes.py [DB]
"""

import sys

from vlmscope.cli.output import render
from vlmscope.collectors import read_connection

RECIPES = {
    "worst classes (encoder recall on rows whose answer is a class)": """
        SELECT expected AS class, count(*) AS rows,
               round(avg(CASE WHEN top_k_labels[1] = expected THEN 1 ELSE 0 END), 3) AS recall
        FROM pipeline_rows
        WHERE list_contains(top_k_labels, expected)
           OR expected IN (SELECT DISTINCT unnest(top_k_labels) FROM pipeline_rows)
        GROUP BY 1 ORDER BY recall, rows DESC LIMIT 5""",
    "encoder right, head wrong": """
        SELECT p.run, p.row_id, p.expected, p.top_k_labels[1] AS encoder_top1, p.output
        FROM pipeline_rows p JOIN evaluations e USING (trace_id, row_id)
        WHERE e.evaluator = 'failure_attribution' AND e.label = 'language_head'
        ORDER BY p.run, p.row_id LIMIT 5""",
    "latency by checkpoint": """
        SELECT left(checkpoint_sha256, 12) AS checkpoint, count(*) AS rows,
               round(median(encoder_ms), 2) AS encoder_ms_p50,
               round(quantile_cont(llm_ms, 0.95), 2) AS llm_ms_p95
        FROM pipeline_rows GROUP BY 1 ORDER BY 1""",
    "hallucinated objects by frequency": """
        SELECT object, count(*) AS times
        FROM (SELECT unnest(CAST(metadata->'$.hallucinated' AS VARCHAR[])) AS object
              FROM evaluations WHERE evaluator = 'caption_hallucination')
        GROUP BY 1 ORDER BY times DESC, object LIMIT 5""",
}

db = sys.argv[1] if len(sys.argv) > 1 else "vlmscope.duckdb"
with read_connection(db) as con:
    for title, sql in RECIPES.items():
        result = con.execute(sql)
        columns = [d[0] for d in result.description]
        print(f"-- {title}\n{render(columns, result.fetchall(), 'table')}\n")
