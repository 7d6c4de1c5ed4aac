"""Paraphrased-image cohorts: the same rows under corruptions, and how a run holds up on them.

:func:`perturb` derives, from every row of a dataset, one row per corruption and severity
(:mod:`vlmscope.cohorts.corruptions`); each derived row keeps the ground truth and points to
its source row. :func:`robustness` reads a run over such a cohort from the store:

* ``accuracy`` per corruption x severity: share of rows the evaluator passed;
* ``accuracy_drop`` = accuracy of the clean source rows - accuracy of the derived rows;
* ``flip_rate``: share of derived rows whose answer (normalised) differs from the answer to
  their clean source row in the same run;
* with a baseline run over the same cohort, the corruption error
  ``CE_c = sum_s E_{c,s} / sum_s E^baseline_{c,s}`` (``E`` = 1 - accuracy) and its mean over
  corruptions ``mCE``, as ImageNet-C defines them relative to AlexNet.
"""

from __future__ import annotations

import dataclasses
import os
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from vlmscope._optional import require
from vlmscope.cohorts.corruptions import CORRUPTIONS, SEVERITIES, corrupt
from vlmscope.dataset.core import Dataset, DatasetRow
from vlmscope.dataset.images import ImageDecodeError, decode_image


def derived_row_id(source_row_id: str, corruption: str, severity: int) -> str:
    """The id of a derived row: ``"<source>~<corruption>@<severity>"``."""
    return f"{source_row_id}~{corruption}@{severity}"


def perturb(
    dataset: Dataset,
    corruptions: Sequence[str] | None = None,
    severities: Sequence[int] = SEVERITIES,
    seed: int = 0,
    *,
    name: str | None = None,
    include_clean: bool = True,
) -> Dataset:
    """A new dataset of ``dataset``'s rows under each corruption at each severity.

    ``corruptions`` defaults to all of :data:`~vlmscope.cohorts.corruptions.CORRUPTIONS`.
    The new dataset is named ``name`` (default ``"<dataset>+perturbed"``) and holds, with
    ``include_clean``, the clean rows first (as they are), then for every row and
    corruption and severity a row with id :func:`derived_row_id`, the corrupted image (RGB
    PIL), the same ground truth, the tag ``corruption:<name>`` and ``source_row_id``,
    ``corruption`` and ``severity`` set. Each image's random draws depend only on
    ``seed``, the source row id, the corruption and the severity. Rows whose image does not
    decode get no derived rows.
    """
    chosen = tuple(corruptions) if corruptions is not None else CORRUPTIONS
    unknown = [c for c in chosen if c not in CORRUPTIONS]
    if unknown:
        raise ValueError(f"unknown corruption(s) {', '.join(unknown)}; use any of "
                         f"{', '.join(CORRUPTIONS)}")
    bad = [s for s in severities if s not in SEVERITIES]
    if bad or not severities:
        raise ValueError(f"severities must be among 1..5, got {list(severities)}")
    pil_image = require("PIL.Image", "vlmscope.cohorts.perturb")
    rows: list[DatasetRow] = list(dataset.rows) if include_clean else []
    for row in dataset.rows:
        try:
            clean = np.asarray(decode_image(row.image))
        except ImageDecodeError:
            continue
        row_key = zlib.crc32(row.id.encode())
        for corruption in chosen:
            for severity in severities:
                rng = np.random.default_rng([seed, row_key, CORRUPTIONS.index(corruption),
                                             severity])
                image = pil_image.fromarray(corrupt(clean, corruption, severity, rng))
                rows.append(dataclasses.replace(
                    row, id=derived_row_id(row.id, corruption, severity), image=image,
                    tags=(*row.tags, f"corruption:{corruption}"), source_row_id=row.id,
                    corruption=corruption, severity=severity))
    return Dataset(name or f"{dataset.name}+perturbed", rows, derived_from=dataset.name)


_SEVERITY_SQL = """
WITH run AS (
    SELECT dataset, eval_run_id FROM dataset_runs WHERE run_name = $run
), rows AS (
    SELECT d.row_id, d.source_row_id, d.corruption, d.severity, e.passed,
           vlmscope_normalize(p.output) AS answer
    FROM dataset_rows d JOIN run ON d.dataset = run.dataset
    LEFT JOIN evaluations e ON e.run_id = run.eval_run_id AND e.row_id = d.row_id
         AND e.evaluator = $evaluator
    LEFT JOIN (SELECT row_id, output FROM pipeline_rows WHERE run = $run) p
         ON p.row_id = d.row_id
)
SELECT r.corruption, r.severity, count(*) AS n,
       count(*) FILTER (WHERE r.passed) AS passed,
       count(*) FILTER (WHERE s.passed) AS source_passed,
       count(*) FILTER (WHERE r.answer IS DISTINCT FROM s.answer) AS flipped
FROM rows r JOIN rows s ON s.row_id = r.source_row_id
WHERE r.corruption IS NOT NULL
GROUP BY ALL ORDER BY r.corruption, r.severity
"""


def _by_severity(con: Any, run: str, evaluator: str) -> list[dict[str, Any]]:
    found = con.execute("SELECT count(*) FROM dataset_runs WHERE run_name = ?",
                        [run]).fetchall()
    if not found[0][0]:
        raise ValueError(f"no run named {run!r} in the store (runs come from Dataset.run)")
    return [{"corruption": corruption, "severity": severity, "rows": n,
             "accuracy": passed / n, "accuracy_drop": (source_passed - passed) / n,
             "flip_rate": flipped / n}
            for corruption, severity, n, passed, source_passed, flipped in con.execute(
                _SEVERITY_SQL, {"run": run, "evaluator": evaluator}).fetchall()]


def robustness(
    run: str,
    *,
    baseline: str | None = None,
    db: str | os.PathLike[str] | None = None,
    evaluator: str = "ground_truth_match",
) -> dict[str, Any]:
    """Accuracy drop, flip rate and (with ``baseline``) corruption error of ``run``, a run
    over a dataset made by :func:`perturb` (see the module docstring for the formulas).

    Returns ``by_severity`` (one entry per corruption x severity), ``by_corruption`` (mean
    accuracy drop and flip rate over severities, and ``ce`` when there is a baseline) and
    ``mce``. ``db`` defaults to the configured store, else ``$VLMSCOPE_DB``.
    """
    from vlmscope.dataset.store import reading_connection
    from vlmscope.evaluators.text import install_macros

    with reading_connection(db) as con:
        install_macros(con)
        levels = _by_severity(con, run, evaluator)
        reference = _by_severity(con, baseline, evaluator) if baseline is not None else None
    if not levels:
        raise ValueError(f"run {run!r} has no perturbed rows: run a dataset made by "
                         "vlmscope.cohorts.perturb")
    base_error = {}
    if reference is not None:
        for level in reference:
            base_error.setdefault(level["corruption"], []).append(1.0 - level["accuracy"])
    by_corruption = []
    for corruption in sorted({level["corruption"] for level in levels}):
        mine = [level for level in levels if level["corruption"] == corruption]
        entry: dict[str, Any] = {
            "corruption": corruption,
            "accuracy_drop": float(np.mean([level["accuracy_drop"] for level in mine])),
            "flip_rate": float(np.mean([level["flip_rate"] for level in mine])),
        }
        if reference is not None:
            denominator = sum(base_error.get(corruption, []))
            errors = sum(1.0 - level["accuracy"] for level in mine)
            entry["ce"] = errors / denominator if denominator else None
        by_corruption.append(entry)
    ces = [c["ce"] for c in by_corruption if c.get("ce") is not None]
    return {"run": run, "baseline": baseline, "by_severity": levels,
            "by_corruption": by_corruption, "mce": float(np.mean(ces)) if ces else None}
