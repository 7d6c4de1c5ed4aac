"""A cross-validated linear probe on stored embeddings: an encoder reading for encoders
without a classifier head.

For the rows of a relation that have an expected label and a stored embedding (table
``embeddings``, joined on trace and row id; the last vector of a row), a multinomial logistic
regression (scikit-learn) is fitted ``k`` times on ``(k - 1) / k`` of the rows and predicts
the held-out rest (stratified ``k``-fold, ``k = min(folds, rows of the rarest label)``): every
row gets a label from a probe that never saw it. The share of rows whose prediction is their
expected label is the probe's accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa

from vlmscope._optional import require

DEFAULT_FOLDS = 5
"""Folds of the cross-validation."""


@dataclass(frozen=True)
class ProbeReadings:
    """The probe's held-out prediction per row (``row_id, trace_id, label``), or why there is
    none (``skipped``), with the number of rows, folds and the accuracy (0-1)."""

    readings: pa.Table | None
    rows: int
    folds: int
    accuracy: float | None
    skipped: str | None


def probe_readings(con: duckdb.DuckDBPyConnection, source: str, *,
                   folds: int = DEFAULT_FOLDS, seed: int = 0) -> ProbeReadings:
    """Cross-validated probe labels for the rows of ``source`` with an embedding and an
    expected label (see the module docstring)."""
    present = {r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE table_name = 'embeddings'").fetchall()}
    if not present:
        return ProbeReadings(None, 0, 0, None, "no embeddings table in the store")
    rows = con.execute(f"""
        SELECT s.row_id, s.trace_id, s.expected, e.vector
        FROM {source} s JOIN (
            SELECT * FROM embeddings QUALIFY row_number() OVER (
                PARTITION BY trace_id, row_id ORDER BY span_id DESC, record_index DESC) = 1
        ) e ON e.row_id = s.row_id AND e.trace_id = s.trace_id
        WHERE NOT vlmscope_blank(s.expected)
        ORDER BY s.trace_id, s.row_id
    """).fetchall()
    if not rows:
        return ProbeReadings(None, 0, 0, None, "no row has both an embedding and an expected "
                                               "label")
    labels = np.array([r[2] for r in rows], dtype=object)
    _, counts = np.unique(labels, return_counts=True)
    k = int(min(folds, counts.min()))
    if len(counts) < 2 or k < 2:
        return ProbeReadings(None, len(rows), 0, None,
                             "the probe needs two labels with at least two rows each")
    dims = {len(r[3]) for r in rows}
    if len(dims) > 1:
        return ProbeReadings(None, len(rows), 0, None,
                             f"embeddings of different sizes {sorted(dims)}")
    model_selection = require("sklearn.model_selection", "the linear probe (scikit-learn)")
    linear_model = require("sklearn.linear_model", "the linear probe (scikit-learn)")
    preprocessing = require("sklearn.preprocessing", "the linear probe (scikit-learn)")
    pipeline = require("sklearn.pipeline", "the linear probe (scikit-learn)")
    vectors = np.array([r[3] for r in rows], dtype=np.float64)
    probe = pipeline.make_pipeline(preprocessing.StandardScaler(),
                                   linear_model.LogisticRegression(max_iter=1000))
    predicted = model_selection.cross_val_predict(
        probe, vectors, labels,
        cv=model_selection.StratifiedKFold(n_splits=k, shuffle=True, random_state=seed))
    readings = pa.table({"row_id": [r[0] for r in rows], "trace_id": [r[1] for r in rows],
                         "label": [str(p) for p in predicted]})
    return ProbeReadings(readings, len(rows), k, float(np.mean(predicted == labels)), None)
