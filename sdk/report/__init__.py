"""The HTML report of a store (needs ``vlmscope[report]`` for matplotlib)."""

from vlmscope.report.build import ReportStats, build_report

__all__ = ["ReportStats", "build_report"]
