"""The evaluators against the store's spec: their row schema and the columns each reads.

The store's own places are checked by :func:`vlmscope.collectors.spec.out_of_step`; this is
the evaluators' half, kept here because the store does not import the layer above it.
"""

from __future__ import annotations

import importlib
import pkgutil

import pyarrow as pa

from vlmscope.collectors import spec
from vlmscope.evaluators import base


def out_of_step() -> list[str]:
    """Every place of the evaluators whose shape of ``pipeline_rows`` differs from the spec,
    one line each naming the place and the difference: the evaluators' row schema and every
    evaluator class's ``required_columns``. Empty when all agree."""

    def arrow(schema: pa.Schema) -> list[tuple[str, str]]:
        return [(f.name, spec.type_name(f.type)) for f in schema]

    problems: list[str] = []
    found, wanted = arrow(base.PIPELINE_ROW_SCHEMA), arrow(spec.pipeline_rows_schema())
    if found != wanted:
        missing = [w for w in wanted if w not in found]
        extra = [f for f in found if f not in wanted]
        problems.append(
            f"evaluators.base.PIPELINE_ROW_SCHEMA: differs from the spec (missing or changed "
            f"{missing}, not in the spec {extra})" if missing or extra else
            "evaluators.base.PIPELINE_ROW_SCHEMA: columns in another order than the spec's")
    names = {c.name for c in spec.PIPELINE_ROWS}
    for evaluator in evaluator_classes():
        required = getattr(evaluator, "required_columns", ())
        if isinstance(required, tuple):
            unknown = [c for c in required if c not in names]
            if unknown:
                problems.append(f"evaluator {evaluator.__name__}.required_columns: "
                                f"{unknown} are not pipeline_rows columns")
    return problems


def evaluator_classes() -> list[type]:
    """Every row evaluator class the package defines (and any defined elsewhere so far)."""
    import vlmscope.evaluators as package

    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")
    found: list[type] = []
    pending: list[type] = [base.RowEvaluator]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found
