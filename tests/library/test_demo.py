"""`vlmscope demo` end to end at the small size (the same code path as the full one), and its
HTML report in real headless Chromium."""

from __future__ import annotations

import os
import re
import shutil

import pytest

pytest.importorskip("torchvision")
pytest.importorskip("transformers")
pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

from tests.helpers import query  # noqa: E402
from vlmscope.cli import main  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"]


@pytest.fixture(scope="module")
def demo(demo_store):
    return demo_store


def test_the_demo_stores_every_cohort_and_both_checkpoints(demo):
    db, _, _ = demo
    runs = dict(query(db, "SELECT run, count(*) FROM pipeline_rows GROUP BY run"))
    assert runs == {"baseline": 64, "candidate": 64, "baseline-perturbed": 144}
    assert {c for (c,) in query(db, "SELECT DISTINCT cohort FROM pipeline_rows")} == {
        "heldout", "perturbed"}
    per_run = query(db, "SELECT run, count(DISTINCT checkpoint_sha256) FROM pipeline_rows "
                        "GROUP BY run")
    assert {n for _, n in per_run} == {1}
    assert query(db, "SELECT count(DISTINCT checkpoint_sha256) FROM pipeline_rows") == [(2,)]
    # the rows carry the real head's answers and timings, nothing is missing
    (bad,), = query(db, "SELECT count(*) FROM pipeline_rows WHERE output IS NULL OR "
                        "top_k_labels IS NULL OR status <> 'OK' OR llm_model <> "
                        "'gpt2-digits-head'")
    assert bad == 0
    # the perturbed rows point to their clean source rows
    (unsourced,), = query(db, "SELECT count(*) FROM dataset_rows WHERE dataset = 'perturbed' "
                              "AND (source_row_id IS NULL OR corruption IS NULL)")
    assert unsourced == 0


def test_every_evaluator_judged_and_both_kinds_of_blame_and_a_hallucination_arose(demo):
    db, _, _ = demo
    evaluators = {e for (e,) in query(db, "SELECT DISTINCT evaluator FROM evaluations")}
    assert {"ground_truth_match", "failure_attribution", "caption_hallucination",
            "instruction_adherence"} <= evaluators
    blame = {label for (label,) in query(
        db, "SELECT DISTINCT label FROM evaluations WHERE evaluator = 'failure_attribution'")}
    assert {"encoder", "language_head"} <= blame
    (hallucinated,), = query(db, "SELECT count(*) FROM evaluations WHERE evaluator = "
                                 "'caption_hallucination' AND NOT passed")
    assert hallucinated >= 1


def test_running_the_demo_again_replaces_its_own_store_but_never_another(demo, tmp_path):
    db, _, argv = demo
    assert main(argv) == 0  # cached checkpoints; the store is replaced, not doubled
    assert query(db, "SELECT count(*) FROM pipeline_rows") == [(272,)]
    import vlmscope

    other = tmp_path / "mine.duckdb"
    vlmscope.configure(db=other, service_name="my-app")
    with vlmscope.trace_row("r1"):
        pass
    vlmscope.shutdown()
    assert main(["demo", "--db", str(other), "--size", "small",
                 "--cache", argv[argv.index("--cache") + 1]]) == 2
    assert query(other, "SELECT count(*) FROM row_records") == [(1,)]


def test_the_report_renders_in_headless_chromium_without_errors(demo, tmp_path):
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install Debian's chromium (see .ci/run)")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    playwright = pytest.importorskip("playwright.sync_api")
    db, out, _ = demo
    report = out / "report.html"
    html = report.read_text(encoding="utf-8")
    # nothing to fetch, so it works offline (namespace URIs inside SVG are not fetched)
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", html)
    (changed,), = query(db, """
        SELECT count(*) FROM evaluations b JOIN evaluations c USING (row_id, evaluator)
        WHERE evaluator = 'ground_truth_match'
          AND b.run_id = (SELECT eval_run_id FROM dataset_runs WHERE run_name = 'baseline')
          AND c.run_id = (SELECT eval_run_id FROM dataset_runs WHERE run_name = 'candidate')
          AND b.passed IS DISTINCT FROM c.passed""")
    (failing,), = query(db, "SELECT count(DISTINCT (trace_id, row_id)) FROM evaluations "
                            "WHERE passed = false")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        problems = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
        page.goto(report.as_uri())
        page.wait_for_load_state("load")
        images = page.evaluate("Array.from(document.images).map(i => [i.complete, "
                               "i.naturalWidth])")
        diff_rows = page.locator("#diff-table tbody tr").count()
        failing_blocks = page.locator("details.failing-row").count()
        charts = page.locator("section#classification svg").count()
        page.screenshot(path=str(tmp_path / "report.png"), full_page=False)
        browser.close()
    assert problems == []
    assert images and all(done and width > 0 for done, width in images)
    assert diff_rows == changed > 0
    assert failing_blocks == failing
    assert charts == 9  # three runs x (confusion, precision/recall, reliability)
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_the_eval_the_demo_suggests_reports_only_the_digit_classes(demo, capsys):
    """Over the demo's mixed instructions (digits, counts, yes/no, captions), the suggested
    `vlmscope eval --classes-from-encoder` scores only rows whose expected answer is a digit."""
    import json

    from vlmscope.demo.scenes import DIGIT_WORDS

    db, _, _ = demo
    capsys.readouterr()
    assert main(["eval", "--db", str(db), "--cohort", "heldout", "--classes-from-encoder",
                 "--format", "json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["per_class"] and set(summary["per_class"]) <= set(DIGIT_WORDS)
    ((digit_rows, other_rows),) = query(db, f"""
        SELECT count(*) FILTER (WHERE expected IN {tuple(DIGIT_WORDS)}),
               count(*) FILTER (WHERE expected NOT IN {tuple(DIGIT_WORDS)})
        FROM pipeline_rows WHERE cohort = 'heldout' AND top_k_labels IS NOT NULL""")
    assert summary["rows"] == digit_rows
    assert summary["skipped_reasons"]["an expected label outside the classes"] == other_rows
    assert not any("never ranks" in w for w in summary["warnings"])
    # Without the option, every answer is a class; the summary says how many rows that is.
    assert main(["eval", "--db", str(db), "--cohort", "heldout", "--format", "json"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert f"{other_rows} rows expect an answer the encoder never ranks" in " ".join(
        plain["warnings"])


def test_eval_of_one_named_run_scores_its_rows_and_records_the_run(demo, capsys):
    import json

    db, _, _ = demo
    capsys.readouterr()
    assert main(["eval", "--db", str(db), "--run", "candidate", "--format", "json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    ((rows, skipped),) = query(db, """
        SELECT count(*) FILTER (WHERE nullif(trim(expected), '') IS NOT NULL
                                AND len(coalesce(top_k_labels, [])) > 0),
               count(*) FILTER (WHERE nullif(trim(expected), '') IS NULL
                                OR len(coalesce(top_k_labels, [])) = 0)
        FROM pipeline_rows WHERE run = 'candidate'""")
    assert summary["run"] == "candidate"
    assert (summary["rows"], summary["skipped"]) == (rows, skipped) == (64, 0)
    assert query(db, f"SELECT DISTINCT run_name FROM eval_runs "
                     f"WHERE run_id = '{summary['run_id']}'") == [("candidate",)]
    assert main(["eval", "--db", str(db), "--run", "nosuch"]) == 2
    assert "no rows of run 'nosuch'; the runs here: baseline, baseline-perturbed, candidate" \
        in capsys.readouterr().err


def test_the_demo_encoder_is_multi_label_and_every_row_says_what_it_asks(demo):
    db, _, _ = demo
    ((rows, multi, kinds, scored),) = query(db, """
        SELECT count(*), count(*) FILTER (WHERE encoder_multi_label),
               count(*) FILTER (WHERE instruction_kind IN ('name', 'list', 'count', 'probe',
                                                          'describe')),
               count(*) FILTER (WHERE len(top_k_scores) = 10)
        FROM pipeline_rows""")
    assert rows == multi == kinds == scored == 272
    # sigmoid scores: independent, so several digits of a scene can all score high
    ((many,),) = query(db, "SELECT count(*) FROM pipeline_rows "
                           "WHERE len(list_filter(top_k_scores, lambda s: s >= 0.5)) >= 2")
    assert many > 0


def latest_verdicts(db, evaluator: str) -> dict:
    """(run, trace, row) -> (label, metadata) of each run's evaluation by ``evaluator``."""
    import json

    rows = query(db, """
        SELECT d.run_name, e.trace_id, e.row_id, e.label, e.metadata
        FROM evaluations e JOIN dataset_runs d ON d.eval_run_id = e.run_id
        WHERE e.evaluator = ?""", [evaluator])
    return {(run, trace, row): (label, json.loads(meta) if meta else {})
            for run, trace, row, label, meta in rows}


def test_unattributable_is_at_most_five_percent_of_the_failing_rows_of_every_run(demo):
    db, _, _ = demo
    shares = query(db, """
        SELECT d.run_name, count(*) FILTER (WHERE e.label <> 'correct') AS failing,
               count(*) FILTER (WHERE e.label = 'unattributable') AS unattributable
        FROM evaluations e JOIN dataset_runs d ON d.eval_run_id = e.run_id
        WHERE e.evaluator = 'failure_attribution' GROUP BY ALL ORDER BY ALL""")
    assert [run for run, *_ in shares] == ["baseline", "baseline-perturbed", "candidate"]
    for run, failing, unattributable in shares:
        assert failing > 0, run
        assert unattributable <= 0.05 * failing, (run, failing, unattributable)


def test_caption_hallucination_and_failure_attribution_never_contradict_on_a_row(demo):
    """Over the whole demo store: what CaptionHallucination says the head invented or the
    encoder reported, and how it scores each probe, is what FailureAttribution's object
    classes say."""
    from vlmscope.demo.scenes import DIGIT_WORDS

    db, _, _ = demo
    blame = latest_verdicts(db, "failure_attribution")
    chair = latest_verdicts(db, "caption_hallucination")
    assert set(chair) <= set(blame) and len(chair) > 200
    probe_classes = {"true_positive": {"correct", "head_recovered"},
                     "true_negative": {"correct", "head_recovered"},
                     "false_positive": {"head_invented", "encoder_false_positive"},
                     "false_negative": {"encoder_missed", "head_dropped"}}
    compared = 0
    for key, (label, said) in chair.items():
        blame_label, blamed = blame[key]
        classes = blamed.get("objects", {})
        if said["kind"] == "probe":
            if label == "unparsed":
                assert blame_label == "unattributable", key
                continue
            (object_class,) = classes.values()
            assert object_class in probe_classes[label], (key, label, classes)
            compared += 1
            continue
        for obj in said["hallucinated_by_language_head"]:
            assert classes.get(obj) == "head_invented", (key, said, classes)
        for obj in said["hallucinated_by_encoder"]:
            assert classes.get(obj) == "encoder_false_positive", (key, said, classes)
        if blamed.get("kind") in ("name", "list", "describe"):
            invented = {o for o, c in classes.items() if c == "head_invented"}
            reported = {o for o, c in classes.items() if c == "encoder_false_positive"}
            assert invented & set(DIGIT_WORDS) == set(said["hallucinated_by_language_head"])
            assert reported == set(said["hallucinated_by_encoder"])
        compared += 1
    assert compared == len(chair)


def test_the_report_shows_the_multi_label_reading_the_object_classes_and_batch_shares(demo):
    db, out, _ = demo
    text = (out / "report.html").read_text(encoding="utf-8")
    section = text[text.index('<section id="multilabel">'):]
    section = section[:section.index("</section>")]
    # one table per run, a row per digit
    assert section.count('id="multilabel-table"') == 3
    assert section.count("<td>seven</td>") == 3 and "subset accuracy" in section
    blame = text[text.index('<section id="blame">'):]
    blame = blame[:blame.index("</section>")]
    assert 'id="blame-kind-table"' in blame and 'id="blame-object-table"' in blame
    for kind in ("name", "list", "count", "probe", "describe"):
        assert f"<td>{kind}</td>" in blame
    summary = text[text.index('id="summary-table"'):]
    summary = summary[:summary.index("</table>")]
    assert "the row&#x27;s share" in summary and "mean batch size" in summary
    ((share, whole, batch),) = query(db, """
        SELECT avg(encoder_share_ms + llm_share_ms), avg(encoder_ms + llm_ms), max(batch_size)
        FROM pipeline_rows WHERE run = 'baseline'""")
    assert batch == 32 and share < whole / 4
