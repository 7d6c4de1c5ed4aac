"""The spec of the store (collectors/spec.py) against every place the shape of a table lives."""

from __future__ import annotations

import dataclasses
import hashlib
import re

import pytest

from vlmscope.collectors import convert, facts, spec
from vlmscope.collectors.migrations import MIGRATIONS
from vlmscope.evaluators import spec_check

# SHA-256 (first 16 hex digits) of each shipped migration's statements, whitespace folded.
# Versions 1-6 are the digests of the SQL the code before the frozen migrations generated.
SHIPPED = {
    1: "b6d13efb8ef52103", 2: "aefc970f7da38a33", 3: "61edfb53103b2702",
    4: "c8a5dcde35afadda", 5: "c65dcde063f52a90", 6: "c848fdeab1509c54",
    7: "df4ad5d16e757d51", 8: "84961e8045b5ef3a", 9: "1043a9a5016399c7",
    10: "1dcf848f6dbfd331",
}


def test_every_place_agrees_with_the_spec() -> None:
    assert spec.out_of_step() == []
    assert spec_check.out_of_step() == []


def test_shipped_migrations_are_frozen_text() -> None:
    """Editing a shipped migration (or building one from live code that then changes)
    changes its digest."""
    for migration in MIGRATIONS:
        if migration.version not in SHIPPED:
            continue
        text = "\n".join(re.sub(r"\s+", " ", s).strip() for s in migration.statements)
        assert hashlib.sha256(text.encode()).hexdigest()[:16] == SHIPPED[migration.version], (
            f"migration {migration.version} changed")


def test_the_latest_migration_leaves_the_view_and_the_rows_the_live_code_makes() -> None:
    """The ``pipeline_rows`` view and the refill of the newest migration that writes them are
    what :mod:`vlmscope.collectors.facts` builds today: a change to the rule of the parts
    (spec.PARTS) needs a migration that refills the stores already written."""
    def folded(statement: str) -> str:
        return re.sub(r"\s+", " ", statement).strip()

    latest_view = latest_refill = None
    for migration in MIGRATIONS:
        for statement in map(folded, migration.statements):
            if statement.startswith(("CREATE VIEW pipeline_rows", "CREATE OR REPLACE VIEW "
                                                                  "pipeline_rows")):
                latest_view = statement.replace("CREATE VIEW", "CREATE OR REPLACE VIEW")
            if statement.startswith("CREATE OR REPLACE TEMP TABLE _vlmscope_assembled"):
                latest_refill = statement
    assert latest_view == folded(facts.view_sql())
    assert latest_refill == folded(facts._refill_statements()[0])


def _with_column(table: spec.Table, column: spec.Column) -> spec.Table:
    return dataclasses.replace(table, columns=(*table.columns, column))


def test_a_record_column_added_to_the_spec_only_is_named_in_every_place_out_of_step(
        monkeypatch: pytest.MonkeyPatch) -> None:
    changed = _with_column(spec.LLM_RECORDS, spec.Column("temperature", "DOUBLE", "t"))
    monkeypatch.setattr(spec, "LLM_RECORDS", changed)
    monkeypatch.setattr(spec, "DERIVED", tuple(changed if t.name == "llm_records" else t
                                               for t in spec.DERIVED))
    problems = "\n".join(spec.out_of_step())
    assert "store table llm_records (migrations)" in problems
    assert "normalize.TABLES['llm_records']" in problems
    if convert.native_widths() is not None:
        assert "native converter _spans_native.c" in problems
    assert "store table encoder_records" not in problems  # the others are in step


def test_a_pipeline_rows_column_renamed_in_the_spec_only_is_named_everywhere(
        monkeypatch: pytest.MonkeyPatch) -> None:
    renamed = tuple(dataclasses.replace(c, name="answer") if c.name == "output" else c
                    for c in spec.PIPELINE_ROWS)
    monkeypatch.setattr(spec, "PIPELINE_ROWS", renamed)
    problems = spec.out_of_step() + spec_check.out_of_step()
    places = {p.split(":")[0] for p in problems}
    assert "store view pipeline_rows (migrations)" in places
    assert "evaluators.base.PIPELINE_ROW_SCHEMA" in places
    # every evaluator that reads the answer says so
    assert any(p.startswith("evaluator GroundTruthMatch.required_columns") for p in problems)


def test_a_part_column_changed_in_the_spec_only_names_the_materialised_tables(
        monkeypatch: pytest.MonkeyPatch) -> None:
    columns = tuple((name, kind if name != "embedding_dim" else "BIGINT")
                    for name, kind in spec.FACT_COLUMNS)
    monkeypatch.setattr(spec, "FACT_COLUMNS", columns)
    places = {p.split(":")[0] for p in spec.out_of_step()}
    assert places == {"store table pipeline_row_facts (migrations)",
                      "store table pipeline_row_parts (migrations)",
                      "facts.SCHEMA (pipeline_row_facts / pipeline_row_parts)"}


def test_every_source_attribute_is_named_once_in_the_conventions() -> None:
    """The spec reads attributes by the constants of the conventions module, never by a
    string of its own."""
    from vlmscope import conventions as cv

    known = {v for k, v in vars(cv).items() if k.isupper() and isinstance(v, str)}
    for table in (spec.SPANS, *spec.DERIVED):
        for column in table.columns:
            assert column.meaning, f"{table.name}.{column.name} has no meaning"
            for source in column.sources:
                if source.origin == spec.SPAN or source.attribute.endswith(
                        cv.EMBEDDING_VECTOR_SUFFIX):
                    continue
                assert source.attribute in known, (table.name, column.name, source)


def test_no_module_but_the_conventions_types_an_attribute_name_or_annotator_kind() -> None:
    """Every attribute name (and annotator kind, span kind) is typed once, in
    ``vlmscope.conventions``; every other module imports the constant. The store's
    environment variable is typed once, in ``vlmscope.settings``."""
    import ast

    from tests.helpers import package_modules, parse_python
    from vlmscope import conventions as cv
    from vlmscope.settings import DB_ENV

    names = {v for k, v in vars(cv).items() if k.isupper() and isinstance(v, str)
             and ("." in v or (v.isupper() and len(v) > 2))}
    typed = []
    for module, path in package_modules().items():
        for node in ast.walk(parse_python(path.read_text())):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
                continue
            if (node.value in names and module != "vlmscope.conventions") or (
                    node.value == DB_ENV and module != "vlmscope.settings"):
                typed.append(f"{module} line {node.lineno}: {node.value!r}")
    assert not typed, "\n".join(typed)
