"""Tables and queries as Arrow, pandas and polars frames while a writer runs; pipeline_rows
in the Parquet export; ``vlmscope sql --format parquet``."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import vlmscope
from vlmscope.cli import main
from vlmscope.collectors.frames import read_frame


def _trace(n: int) -> None:
    for i in range(n):
        with vlmscope.trace_row(f"r{i}", expected="cat"):
            with vlmscope.llm_span(model="m", instruction="q") as llm:
                llm.set_output("cat" if i % 2 else "dog", input_tokens=3, output_tokens=1)


def test_a_table_and_a_query_come_as_arrow_pandas_and_polars_while_the_writer_runs(
        db_path: Path) -> None:
    vlmscope.configure(db=db_path)
    try:
        _trace(4)
        vlmscope.force_flush()
        # the exporter of this process still holds the file: it hands it over for the read
        table = read_frame(db_path, "pipeline_rows")
        assert isinstance(table, pa.Table) and table.num_rows == 4
        assert table.schema.field("top_k_labels").type == pa.list_(pa.string())
        wrong = read_frame(db_path, "SELECT row_id FROM pipeline_rows "
                                    "WHERE output <> expected ORDER BY row_id")
        assert wrong.column("row_id").to_pylist() == ["r0", "r2"]
        pandas = pytest.importorskip("pandas")
        frame = read_frame(db_path, "pipeline_rows", kind="pandas")
        assert isinstance(frame, pandas.DataFrame) and sorted(frame["row_id"]) == [
            "r0", "r1", "r2", "r3"]
        polars = pytest.importorskip("polars")
        frame = read_frame(db_path, "llm_records", kind="polars")
        assert isinstance(frame, polars.DataFrame) and frame["input_tokens"].sum() == 12
        _trace(1)  # and the writer goes on writing afterwards
    finally:
        vlmscope.shutdown()
    assert read_frame(db_path, "pipeline_rows").num_rows == 5


def test_a_write_or_an_unknown_kind_is_refused(db_path: Path) -> None:
    vlmscope.configure(db=db_path)
    _trace(1)
    vlmscope.shutdown()
    with pytest.raises(ValueError, match="kind must be one of"):
        read_frame(db_path, "pipeline_rows", kind="excel")
    with pytest.raises(ValueError):
        read_frame(db_path, "DELETE FROM spans")
    assert read_frame(db_path, "spans").num_rows == 2


def test_pipeline_rows_are_in_the_parquet_export(tmp_path: Path, db_path: Path) -> None:
    vlmscope.configure(db=db_path, service_name="agent")
    _trace(3)
    vlmscope.shutdown()
    folder = tmp_path / "export"
    assert main(["export", "--db", str(db_path), "--format", "parquet", "-o", str(folder)]) == 0
    files = list((folder / "pipeline_rows").glob("date=*/service=agent/*.parquet"))
    assert files
    exported = pa.concat_tables([pq.read_table(f) for f in files])
    stored = read_frame(db_path, "pipeline_rows")
    assert sorted(exported.column("output").to_pylist(), key=str) == sorted(
        stored.column("output").to_pylist(), key=str)
    assert set(stored.column_names) <= set(exported.column_names)


def test_vlmscope_sql_writes_a_query_as_parquet_with_its_types(
        tmp_path: Path, db_path: Path, capsys: pytest.CaptureFixture) -> None:
    vlmscope.configure(db=db_path)
    _trace(3)
    vlmscope.shutdown()
    out = tmp_path / "rows.parquet"
    assert main(["sql", "SELECT row_id, input_tokens, top_k_labels FROM pipeline_rows "
                 "ORDER BY row_id", "--db", str(db_path), "--format", "parquet",
                 "-o", str(out)]) == 0
    assert "wrote 3 rows" in capsys.readouterr().out
    table = pq.read_table(out)
    assert table.column("row_id").to_pylist() == ["r0", "r1", "r2"]
    assert table.schema.field("input_tokens").type == pa.int64()
    assert table.schema.field("top_k_labels").type == pa.list_(pa.string())
    assert main(["sql", "SELECT 1", "--db", str(db_path), "--format", "parquet"]) != 0
