"""The effect report: one object built from an analysis result, rendered as JSON (a
documented, versioned schema: see schema.json beside this module), CSV (one row per
estimate) or a self-contained HTML page with an inline SVG forest plot."""

from experiments.report.model import SCHEMA_VERSION, Report, build_report, schema

__all__ = ["SCHEMA_VERSION", "Report", "build_report", "schema"]
