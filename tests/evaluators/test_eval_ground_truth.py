"""GroundTruthMatch: the modes, bad input, and one implementation for rows and batches."""

from __future__ import annotations

import duckdb
import numpy as np
import orjson
import pyarrow as pa
import pytest

from vlmscope.collectors.schema import migrate
from vlmscope.evaluators import GroundTruthMatch, run_evaluations
from vlmscope.evaluators.aliases import alias_map, resolve_alias_chains
from vlmscope.evaluators.base import PIPELINE_ROW_SCHEMA, staged
from vlmscope.evaluators.reading import install_reading_macros


def test_exact_match_scores_one_with_a_readable_reason() -> None:
    result = GroundTruthMatch(mode="exact").evaluate(output="cat", expected="cat")
    assert (result.score, result.passed, result.label) == (1.0, True, "match")
    assert result.reason == "answer 'cat' matches expected 'cat'"


def test_exact_mode_is_case_sensitive() -> None:
    assert GroundTruthMatch(mode="exact").evaluate(output="Cat", expected="cat").score == 0.0


def test_normalized_mode_ignores_case_whitespace_punctuation_and_articles() -> None:
    result = GroundTruthMatch().evaluate(output="  The Tabby-Cat. ", expected="tabby cat")
    assert result.passed
    assert "(both read as 'tabby cat')" in result.reason


def test_a_mismatch_names_what_was_compared_and_the_encoder_top1() -> None:
    result = GroundTruthMatch().evaluate(output="dog", expected="tabby cat",
                                         top_k_labels=["tabby cat", "dog"])
    assert result.score == 0.0 and result.label == "mismatch"
    assert result.reason == "expected 'tabby cat', answer 'dog'; encoder top-1 'tabby cat'"


@pytest.mark.parametrize(("answer", "expected"), [
    ("a kitten", "cat"), ("aeroplane", "airplane"), ("TV-monitor", "tv"),
    ("tabby cat", "tabby"),
])
def test_synonyms_mode_accepts_builtin_aliases(answer: str, expected: str) -> None:
    assert GroundTruthMatch(mode="synonyms").evaluate(output=answer, expected=expected).passed
    assert not GroundTruthMatch().evaluate(output=answer, expected=expected).passed


def test_synonyms_mode_uses_the_user_map_first() -> None:
    match = GroundTruthMatch(mode="synonyms", synonyms={"moggy": "cat", "kitten": "dog"})
    assert match.evaluate(output="moggy", expected="cat").passed
    assert match.evaluate(output="kitten", expected="dog").passed


def test_set_mode_accepts_any_expected_label() -> None:
    match = GroundTruthMatch(mode="set")
    assert match.evaluate(output="Kitten", expected=["cat", "kitten"]).passed
    result = match.evaluate(output="dog", expected="cat|kitten")
    assert result.reason == "answer 'dog' is not one of the expected ['cat', 'kitten']"
    assert match.evaluate(output="sofa", expected=None, objects=["couch", "cat"]).passed


@pytest.mark.parametrize(("answer", "passed"), [
    ("about 3.05 apples", True), ("3.2", False), ("-3", False), ("three", False),
])
def test_numeric_mode_compares_the_first_number_within_tolerance(answer: str,
                                                                 passed: bool) -> None:
    result = GroundTruthMatch(mode="numeric", abs_tol=0.1).evaluate(output=answer,
                                                                    expected="3")
    assert result.passed is passed


def test_numbers_in_groups_of_three_digits_are_read_whole_as_python_reads_them() -> None:
    """``vlmscope_number`` (numeric mode) and ``vlmscope_count`` (count answers) against
    Python's own reading of the numbers it wrote with ``,`` between groups of three digits,
    in sentences, on many values; a comma that does not group three digits ends the number."""
    con = duckdb.connect()
    install_reading_macros(con)
    rng = np.random.default_rng(7)
    cases = []
    for value in [0, 7, 999, 1000, 12_345, 10**6, 10**12, *rng.integers(0, 10**15, 300)]:
        cases.append((f"there are {int(value):,} of them", float(value), int(value)))
    for value in rng.uniform(-1e7, 1e7, 300):
        text = f"{value:,.3f}"
        # a count has no sign and stops at the decimal point
        cases.append((f"about {text} units", float(text.replace(",", "")),
                      int(text.lstrip("-").replace(",", "").split(".")[0])))
    cases += [("3,4 and 5", 3.0, 3), ("1,0000", 1.0, 1), ("1000", 1000.0, 1000),
              ("-3", -3.0, 3), ("2.5e3 things", 2500.0, 2),
              ("mp3", 3.0, None)]  # numeric mode reads digits inside a word; a count not
    con.register("texts", pa.table({"i": range(len(cases)), "text": [c[0] for c in cases]}))
    read = con.execute("SELECT vlmscope_number(text), vlmscope_count(text) FROM texts "
                       "ORDER BY i").fetchall()
    assert [(n, c) for n, c in read] == [(number, count) for _, number, count in cases]
    match = GroundTruthMatch(mode="numeric")
    assert match.evaluate(output="It is 1,000,000.", expected="1000000").passed
    assert not match.evaluate(output="1,000", expected="1").passed


def test_the_built_in_alias_tables_agree_where_they_chain() -> None:
    """ImageNet's ``television receiver`` -> ``television`` and COCO's ``television`` -> ``tv``
    both hold: every name of the set reads as one class, in both directions."""
    match = GroundTruthMatch(mode="synonyms")
    for names in (["television receiver", "television system", "television", "tv",
                   "TV monitor"],
                  # ImageNet: mobile phone -> cellular telephone; COCO: mobile phone -> cell phone
                  ["mobile phone", "cell phone", "cellphone", "cellular telephone",
                   "cellular phone", "phone"],
                  ["notebook computer", "notebook", "laptop", "laptop computer"]):
        failing = [(a, e) for a in names for e in names
                   if not match.evaluate(output=a, expected=e).passed]
        assert failing == []
    assert not match.evaluate(output="television", expected="cell phone").passed
    # your synonyms override the tables, alias by alias
    mine = GroundTruthMatch(mode="synonyms", synonyms={"mobile phone": "handset"})
    assert mine.evaluate(output="mobile phone", expected="handset").passed
    assert not mine.evaluate(output="cell phone", expected="handset").passed
    assert mine.evaluate(output="cell phone", expected="cellular telephone").passed


def test_the_alias_map_is_idempotent_and_keeps_the_users_entries() -> None:
    rng = np.random.default_rng(5)
    for _ in range(300):
        names = [f"n{i}" for i in range(int(rng.integers(2, 10)))]
        entries = [(str(rng.choice(names)), str(rng.choice(names)), int(rng.integers(0, 3)))
                   for _ in range(int(rng.integers(1, 12)))]
        mapped = alias_map(entries)
        assert not set(mapped.values()) & set(mapped)
        for alias, canonical, priority in entries:
            if priority == 0 and alias != canonical:
                # the user's entry holds: the alias reads as its canonical does
                assert mapped.get(alias, alias) == mapped.get(canonical, canonical) or any(
                    a == alias and p == 0 and c != canonical for a, c, p in entries)


def test_alias_chains_resolve_to_their_end_and_cycles_to_their_smallest_name() -> None:
    rng = np.random.default_rng(11)
    for _ in range(300):
        names = [f"n{i}" for i in range(int(rng.integers(2, 12)))]
        aliases = {a: str(rng.choice(names)) for a in names if rng.random() < 0.7}
        resolved = resolve_alias_chains(aliases)
        assert not set(resolved.values()) & set(resolved)  # idempotent
        for alias in aliases:
            seen, name = [], alias
            while name in aliases and name not in seen:
                seen.append(name)
                name = aliases[name]
            end = min(seen[seen.index(name):]) if name in seen else name
            assert resolved.get(alias, alias) == end
    assert resolve_alias_chains({"a": "b", "b": "c", "x": "x"}) == {"a": "c", "b": "c"}


def test_numeric_mode_skips_a_non_numeric_expected_label() -> None:
    result = GroundTruthMatch(mode="numeric").evaluate(output="3", expected="three")
    assert result.score is None and result.reason == "skipped: expected label is not a number"


def test_top_k_mode_finds_the_expected_label_among_the_encoder_labels() -> None:
    match = GroundTruthMatch(mode="top_k", k=2)
    hit = match.evaluate(expected="cat", top_k_labels=["dog", "Cat", "bird"])
    assert hit.passed and hit.reason.startswith("expected 'cat' is rank 2")
    assert not match.evaluate(expected="bird", top_k_labels=["dog", "cat", "bird"]).passed
    missing = match.evaluate(expected="bird", top_k_labels=None)
    assert missing.label == "no_answer" and missing.score == 0.0


@pytest.mark.parametrize(("output", "why"), [(None, "NULL"), ("", "empty"), ("  ", "empty")])
def test_null_or_empty_outputs_are_scored_wrong_with_that_reason(output, why) -> None:
    result = GroundTruthMatch().evaluate(output=output, expected="cat")
    assert (result.score, result.label) == (0.0, "no_answer")
    assert result.reason == f"no answer: the output is {why}; expected 'cat'"


def test_a_row_without_expected_label_is_skipped_not_scored_zero() -> None:
    result = GroundTruthMatch().evaluate(output="cat", expected=None)
    assert result.score is None and result.passed is None and result.label == "skipped"


def test_bad_settings_fail_with_what_is_valid() -> None:
    with pytest.raises(ValueError, match="use one of exact, normalized"):
        GroundTruthMatch(mode="fuzzy")
    with pytest.raises(ValueError, match="use any of imagenet, coco"):
        GroundTruthMatch(aliases=["voc"])
    with pytest.raises(ValueError, match="unknown column"):
        GroundTruthMatch().evaluate_row({"answer": "cat"})


WORDS = ["cat", "Cat.", "the cat", "dog", "a dog", "kitten", "3", "3.1", "tabby", "", None,
         "tabby cat", "DOG!"]


def random_rows(seed: int, n: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    pick = lambda: WORDS[int(rng.integers(len(WORDS)))]  # noqa: E731
    rows = [{"row_id": f"r{i}", "trace_id": "t", "span_id": f"s{i}", "output": pick(),
             "expected": pick(), "objects": [pick() for _ in range(int(rng.integers(3)))],
             "top_k_labels": [pick() for _ in range(int(rng.integers(4)))] or None}
            for i in range(n)]
    return pa.Table.from_pylist(rows, schema=PIPELINE_ROW_SCHEMA)


@pytest.mark.parametrize("mode", ["exact", "normalized", "synonyms", "set", "numeric", "top_k"])
def test_per_row_and_batch_give_identical_scores_and_reasons(mode: str) -> None:
    table = random_rows(seed=len(mode), n=60)
    con = duckdb.connect()
    migrate(con)
    con.register("rows", table)
    match = GroundTruthMatch(mode=mode, k=2, abs_tol=0.2)
    run = run_evaluations(con, [match], source="rows")
    stored = {row[0]: row[1:] for row in con.execute(
        "SELECT row_id, score, passed, label, explanation, metadata FROM evaluations "
        "WHERE run_id = ?", [run.run_id]).fetchall()}
    skipped = 0
    for row in table.to_pylist():
        fields = {k: row[k] for k in ("output", "expected", "objects", "top_k_labels")}
        result = match.evaluate_row(fields)
        if result.score is None:
            skipped += 1
            assert row["row_id"] not in stored
            continue
        score, passed, label, explanation, metadata = stored[row["row_id"]]
        assert (result.score, result.passed, result.label, result.reason) == (
            score, passed, label, explanation)
        assert result.metadata == orjson.loads(metadata)
    assert len(stored) + skipped == table.num_rows
    assert run.summaries["ground_truth_match"]["skipped"] == skipped


def test_rows_without_expected_label_are_skipped_and_counted() -> None:
    con = duckdb.connect()
    migrate(con)
    con.register("arrow_rows", pa.Table.from_pylist(
        [{"row_id": "a", "output": "cat", "expected": "cat"},
         {"row_id": "b", "output": "cat", "expected": None},
         {"row_id": "c", "output": "cat", "expected": ""}], schema=PIPELINE_ROW_SCHEMA))
    # A stored table is read in place (a view or Arrow relation is copied first).
    con.execute("CREATE TABLE rows AS SELECT * FROM arrow_rows")
    summary = run_evaluations(con, [GroundTruthMatch()], source="rows").summaries
    assert summary["ground_truth_match"] == {
        "judged": 1, "passed": 1, "accuracy": 1.0, "skipped": 2,
        "skipped_reasons": {"no expected label": 2}}
    assert con.execute("SELECT list(row_id) FROM evaluations").fetchall() == [(["a"],)]


def test_a_run_judges_from_staged_verdicts_and_leaves_no_stage_behind() -> None:
    con = duckdb.connect()
    migrate(con)
    con.register("random_table", random_rows(seed=7, n=200))
    con.execute("CREATE TABLE rows AS SELECT * FROM random_table")
    match = GroundTruthMatch()
    ((stage, _),) = match.stages("rows")
    assert stage.startswith("_vlmscope_verdicts_")
    summary = run_evaluations(con, [match], source="rows").summaries["ground_truth_match"]
    # Every row not skipped was joined to its verdict: none lost, none doubled.
    assert summary["judged"] + summary["skipped"] == 200
    assert con.execute("SELECT count(*), count(DISTINCT row_id) FROM evaluations").fetchall() \
        == [(summary["judged"], summary["judged"])]
    leftover = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE '_vlmscope_verdicts_%'"
    ).fetchall()
    assert leftover == [(0,)]


def test_a_failure_inside_the_stages_surfaces_the_first_error() -> None:
    con = duckdb.connect()
    con.execute("BEGIN TRANSACTION")
    with pytest.raises(duckdb.CatalogException, match="no_such_table"), \
            staged(con, [("_stage_a", "SELECT 1 AS x")]):
        con.execute("SELECT * FROM no_such_table")
    con.execute("ROLLBACK")
    assert con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = '_stage_a'").fetchall() == [(0,)]
