"""`vlmscope demo` end to end, at the small size, through the same code path as the full one."""

from __future__ import annotations

import pytest

pytest.importorskip("torchvision")
pytest.importorskip("transformers")
pytest.importorskip("sklearn")

from vlmscope.cli import main  # noqa: E402

from .conftest import query  # noqa: E402


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo")
    db = folder / "demo.duckdb"
    argv = ["demo", "--db", str(db), "--out", str(folder / "out"), "--size", "small",
            "--cache", str(folder / "cache")]
    assert main(argv) == 0
    return db, argv


def test_the_demo_stores_every_cohort_and_both_checkpoints(demo_store):
    db, _ = demo_store
    runs = dict(query(db, "SELECT run, count(*) FROM pipeline_rows GROUP BY run"))
    assert runs == {"baseline": 48, "candidate": 48, "baseline-perturbed": 48}
    cohorts = {c for (c,) in query(db, "SELECT DISTINCT cohort FROM pipeline_rows")}
    assert cohorts == {"heldout", "perturbed"}
    checkpoints = query(db, "SELECT run, count(DISTINCT checkpoint_sha256) FROM pipeline_rows "
                            "GROUP BY run ORDER BY run")
    assert [n for _, n in checkpoints] == [1, 1, 1]
    (distinct,), = query(db, "SELECT count(DISTINCT checkpoint_sha256) FROM pipeline_rows")
    assert distinct == 2  # baseline and candidate
    (bad,), = query(db, "SELECT count(*) FROM pipeline_rows WHERE output IS NULL "
                        "OR top_k_labels IS NULL OR status <> 'OK'")
    assert bad == 0


def test_the_demo_scores_every_run_and_its_failures_arise_naturally(demo_store):
    db, _ = demo_store
    evaluated = {r for (r,) in query(db, "SELECT DISTINCT split_part(run_id, ':', 2) "
                                         "FROM eval_runs")}
    assert evaluated == {"baseline", "candidate", "baseline-perturbed"}
    # the head misuses some correct readings, and the encoder misreads some scenes
    (head_errors,), = query(db, "SELECT count(*) FROM pipeline_rows WHERE run = 'baseline' "
                                "AND list_contains(objects, top_k_labels[1]) "
                                "AND output <> expected")
    (encoder_errors,), = query(db, "SELECT count(*) FROM pipeline_rows WHERE NOT "
                                   "list_contains(objects, top_k_labels[1])")
    assert head_errors > 0 and encoder_errors > 0


def test_running_the_demo_again_replaces_its_own_store_but_never_another(demo_store, tmp_path):
    db, argv = demo_store
    assert main(argv) == 0  # cached checkpoints, same store replaced, not doubled
    assert query(db, "SELECT count(*) FROM pipeline_rows") == [(144,)]
    import vlmscope

    other = tmp_path / "mine.duckdb"
    vlmscope.configure(db=other, service_name="my-app")
    with vlmscope.trace_row("r1"):
        pass
    vlmscope.shutdown()
    assert main(["demo", "--db", str(other), "--size", "small",
                 "--cache", argv[argv.index("--cache") + 1]]) == 2
    assert query(other, "SELECT count(*) FROM row_records") == [(1,)]
