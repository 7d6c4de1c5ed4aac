"""Benchmark: ``vlmscope diff`` of two 1,000,000-row runs, end to end, and perturbed images
generated per second.

The store is built in SQL (tracing a million rows is not what is measured here): one dataset
of N rows, and for each run its row, encoder and language-head records and its
``ground_truth_match`` evaluations, shaped as ``Dataset.run`` writes them. The candidate
breaks 3% of the base run's passing rows and fixes 1% of its failing ones. Timed: the CLI
command in a fresh process-local call (open the store, pair the rows, statistics, per-class,
blame, report), with and without the Parquet per-row diff. DuckDB uses every core it is
given: pin the process to two for the 2-core figure.

    taskset -c 0,1 python benchmarks/bench_diff.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
import time
from pathlib import Path

import duckdb

from vlmscope.cli import main
from vlmscope.collectors.schema import migrate

_RUN = """
INSERT INTO row_records SELECT '{run}-' || i, 'row' || i, 'r' || i, '{run}', 'bench',
    (i % 10)::VARCHAR, NULL, NULL, md5(i::VARCHAR), TIMESTAMP_NS '2025-01-01', 1.0, 'OK', NULL
FROM range({n}) t(i);
INSERT INTO encoder_records SELECT '{run}-' || i, 'enc' || i, 0, 'r' || i, md5(i::VARCHAR),
    'resnet18', 'resnet18', '{checkpoint}', 'avgpool', 512, [{pred}::VARCHAR], [0.9], [{pred}],
    0.5, 1.0, TIMESTAMP_NS '2025-01-01', 1.0, 'OK'
FROM range({n}) t(i);
INSERT INTO llm_records SELECT '{run}-' || i, 'llm' || i, 0, 'r' || i,
    'vlmscope.dataset.pipeline', NULL, NULL, {pred}::VARCHAR, NULL, NULL, 'enc' || i,
    TIMESTAMP_NS '2025-01-01', 1.0, 'OK'
FROM range({n}) t(i);
INSERT INTO evaluations SELECT '{run_id}', 'r' || i, '{run}-' || i, 'llm' || i,
    'ground_truth_match', CASE WHEN {pred} = i % 10 THEN 1.0 ELSE 0.0 END, {pred} = i % 10,
    CASE WHEN {pred} = i % 10 THEN 'match' ELSE 'mismatch' END,
    CASE WHEN {pred} = i % 10 THEN 'answer ''' || (i % 10) || ''' matches expected'
         ELSE 'expected ''' || (i % 10) || ''', answer ''' || {pred} || '''' END,
    '{{}}', 'CODE'
FROM range({n}) t(i);
INSERT INTO dataset_runs VALUES ('{run}', 'bench', '{run_id}', {n}, 0,
    '{{"{checkpoint}": {n}}}', '{{"512": {n}}}', '{{}}', false, '{{}}', now()::TIMESTAMP);
"""

# Base: right on 80% of rows (by a hash); candidate: the base, with 3% of rows broken and 1%
# fixed (by another hash).
_BASE_PRED = "CASE WHEN hash(i) % 100 < 80 THEN i % 10 ELSE (i + 1) % 10 END"
_CANDIDATE_PRED = (f"CASE WHEN ({_BASE_PRED}) = i % 10 AND hash(i * 7 + 1) % 100 < 3 "
                   f"THEN (i + 3) % 10 WHEN ({_BASE_PRED}) <> i % 10 "
                   f"AND hash(i * 7 + 1) % 100 < 5 THEN i % 10 ELSE {_BASE_PRED} END")


def build_store(path: Path, rows: int) -> None:
    """Write the dataset and both runs into a fresh store at ``path``."""
    with duckdb.connect(str(path)) as con:
        migrate(con)
        con.execute(f"INSERT INTO datasets VALUES ('bench', 'f', {rows}, NULL, now()::TIMESTAMP)")
        con.execute(
            "INSERT INTO dataset_rows SELECT 'bench', 'r' || i, i, md5(i::VARCHAR), NULL, NULL, "
            "NULL, NULL, (i % 10)::VARCHAR, NULL, NULL, [], NULL, NULL, NULL, NULL "
            f"FROM range({rows}) t(i)")
        for run, run_id, pred, checkpoint in (("base", "a" * 32, _BASE_PRED, "c1" * 32),
                                              ("candidate", "b" * 32, _CANDIDATE_PRED,
                                               "c2" * 32)):
            con.execute(_RUN.format(run=run, run_id=run_id, pred=pred, checkpoint=checkpoint,
                                    n=rows))


def time_diff(path: Path, *extra: str) -> tuple[float, int, str]:
    """Seconds for one ``vlmscope diff`` call, its exit status and its output."""
    out = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        status = main(["diff", "--db", str(path), "--base", "base", "--candidate",
                       "candidate", *extra])
    return time.perf_counter() - started, status, out.getvalue()


def perturbed_images_per_second(side: int, corruptions: int = 8) -> float:
    """Images per second that ``perturb`` derives from ``side`` x ``side`` photos (every
    corruption at every severity)."""
    from PIL import Image
    from skimage import data

    import vlmscope
    from vlmscope.cohorts import perturb

    photo = Image.fromarray(data.astronaut()).resize((side, side))
    source = vlmscope.Dataset.from_records("p", [{"id": f"p{i}", "image": photo}
                                                 for i in range(4)])
    started = time.perf_counter()
    derived = perturb(source, seed=0, include_clean=False)
    elapsed = time.perf_counter() - started
    return len(derived) / elapsed


def main_benchmark() -> None:
    """Build the store, time the diff, time the perturbations; print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.duckdb"
        started = time.perf_counter()
        build_store(path, args.rows)
        print(f"built a store with 2 x {args.rows:,} rows in "
              f"{time.perf_counter() - started:.1f} s")
        timings = []
        for _ in range(3):
            seconds, status, output = time_diff(path)
            timings.append(seconds)
        print(f"vlmscope diff, table: best {min(timings):.2f} s of 3 "
              f"(exit {status}; {output.splitlines()[-1]})")
        seconds, status, _ = time_diff(path, "--format", "json")
        print(f"vlmscope diff, json: {seconds:.2f} s")
        seconds, status, _ = time_diff(path, "--per-row",
                                       str(Path(folder) / "diff.parquet"))
        print(f"vlmscope diff with the Parquet per-row diff ({args.rows:,} rows): "
              f"{seconds:.2f} s")
    for side in (32, 224):
        print(f"perturb: {perturbed_images_per_second(side):,.0f} images/s at {side}x{side} "
              "(8 corruptions x 5 severities)")


if __name__ == "__main__":
    main_benchmark()
