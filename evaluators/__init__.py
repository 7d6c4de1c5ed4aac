"""Scoring over the store: each evaluator turns ``pipeline_rows`` into evaluation rows."""
