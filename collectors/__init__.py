"""Where spans land: the DuckDB store, its schema and the OpenTelemetry exporter onto it."""

from vlmscope.collectors.exporter import DuckDBSpanExporter, ExportStats
from vlmscope.collectors.schema import SCHEMA_VERSION, migrate
from vlmscope.collectors.store import StoreLockedError, StoreWriter, read_connection

__all__ = [
    "SCHEMA_VERSION",
    "DuckDBSpanExporter",
    "ExportStats",
    "StoreLockedError",
    "StoreWriter",
    "migrate",
    "read_connection",
]
