"""Pinned checkpoints: which encoder checkpoints and embedding dimensions a set of rows saw.

A run is *mixed* when its rows saw more than one encoder checkpoint SHA-256 or more than one
embedding dimension: its numbers then describe no single model.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb


@dataclass(frozen=True)
class CheckpointMix:
    """Rows per encoder checkpoint SHA-256 and per embedding dimension (rows without an
    encoder reading are not counted), and whether there was more than one of either."""

    checkpoints: dict[str, int]
    embedding_dims: dict[int, int]

    @property
    def mixed(self) -> bool:
        """True when the rows saw more than one checkpoint or embedding dimension."""
        return len(self.checkpoints) > 1 or len(self.embedding_dims) > 1

    def describe(self) -> str:
        """One line for a person, e.g. ``mixed checkpoints: 3f2a9c01d4e5 (40 rows), ...``."""
        parts = [f"{sha[:12]} ({n} rows)" for sha, n in self.checkpoints.items()]
        if len(self.embedding_dims) > 1:
            parts += [f"dim {dim} ({n} rows)" for dim, n in self.embedding_dims.items()]
        return ("mixed checkpoints: " if self.mixed else "checkpoint: ") + ", ".join(parts)


def checkpoint_mix(con: duckdb.DuckDBPyConnection, source: str,
                   params: dict[str, object] | None = None) -> CheckpointMix:
    """Count the rows of ``source`` (a relation with the ``pipeline_rows`` columns, or a
    parenthesised query over one with named ``params``) per ``checkpoint_sha256`` and per
    ``embedding_dim``, most rows first, ties by value."""
    checkpoints = con.execute(
        f"SELECT checkpoint_sha256, count(*) AS n FROM {source} "
        "WHERE checkpoint_sha256 IS NOT NULL GROUP BY 1 ORDER BY n DESC, 1",
        params or {}).fetchall()
    dims = con.execute(
        f"SELECT embedding_dim, count(*) AS n FROM {source} "
        "WHERE embedding_dim IS NOT NULL GROUP BY 1 ORDER BY n DESC, 1",
        params or {}).fetchall()
    return CheckpointMix({str(sha): int(n) for sha, n in checkpoints},
                         {int(dim): int(n) for dim, n in dims})
