"""The diagnostics tool's parameters."""

from __future__ import annotations

from .schema import Kind, Parameter, Tool

DIAGNOSTICS = Tool("diagnostics", (
    Parameter("OUTPUT", "Report file (JSON)", Kind.FILE_DESTINATION, "", optional=True,
              file_filter="JSON files (*.json)", help="Optional JSON file receiving the report."),
    Parameter("REPORT", "Report (HTML)", Kind.FILE_DESTINATION, "", optional=True, created_by_default=True,
              file_filter="HTML files (*.html)",
              help="The report as a page (one table per side), listed in the Results Viewer: open it and copy it "
                   "into a bug report."),
))
