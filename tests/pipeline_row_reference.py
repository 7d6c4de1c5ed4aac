"""The Python reference of the one pipeline-row assembler (``facts.assemble_sql``, run by
DuckDB): the same rows from record tables, written plainly, to test it against."""

from __future__ import annotations

import pyarrow as pa

from vlmscope.collectors import facts, spec


def _ns(value) -> int | None:
    """A start time (datetime, ns integer or None) as epoch nanoseconds."""
    if value is None or isinstance(value, int):
        return value
    return pa.scalar(value, pa.timestamp("ns")).cast(pa.int64()).as_py()


def _latest(part: spec.Part, record: dict) -> int | None:
    """The time that makes a record of ``part`` the latest: its start, or its end (start
    plus duration, floored to a nanosecond) for a part ordered by end."""
    start = _ns(record.get("start_time"))
    if start is None or part.latest == "start":
        return start
    return start + facts.duration_ns(record.get("duration_ms"))


def _rank(part: spec.Part, record: dict, linked: str | None = None) -> tuple:
    """Sort key of a record of ``part``: the smallest wins (the linked encoder record, then
    one with the preferred column present, then the latest, a missing time the earliest,
    then the smaller span id and record index)."""
    columns = dict(part.columns)
    at = _latest(part, record)
    key = (at is None, -(at or 0), record["span_id"], record.get("record_index") or 0)
    if part.prefer is not None:
        key = (record.get(columns[part.prefer]) is None, *key)
    if part.name == "encoder":
        key = (record["span_id"] != linked, *key)
    return key


def assemble(tables: dict[str, pa.Table]) -> list[dict]:
    """The assembled parts of record tables (``row_records`` ... as Arrow), one dict of
    ``facts.SCHEMA`` columns per row span (per key when it has none), start times in ns."""
    by_part = {part.name: part for part in spec.PARTS}
    records: dict[str, dict[tuple, list[dict]]] = {p.name: {} for p in spec.PARTS}
    for part in spec.PARTS:
        table = tables.get(part.table.name)
        for record in table.to_pylist() if table is not None else []:
            if record["row_id"] is not None:
                records[part.name].setdefault(
                    (record["trace_id"], record["row_id"]), []).append(record)
    keys = {key for kind in records.values() for key in kind}
    out = []
    for key in keys:
        llms = records["llm"].get(key, [])
        llm = min(llms, key=lambda r: _rank(by_part["llm"], r)) if llms else None
        linked = llm.get("encoder_span_id") if llm else None
        encoders = records["encoder"].get(key, [])
        encoder = min(encoders, key=lambda r: _rank(by_part["encoder"], r, linked)) \
            if encoders else None
        for row in records["row"].get(key) or [None]:
            fact = {"trace_id": key[0], "row_id": key[1]}
            for part, record in (("row", row), ("encoder", encoder), ("llm", llm)):
                for column, source in by_part[part].columns:
                    if record is None:
                        fact[column] = None
                    elif source == "0":
                        fact[column] = 0
                    elif source == "start_time":
                        fact[column] = _ns(record[source])
                    else:
                        fact[column] = record.get(source)
            out.append(fact)
    return out
