"""How a report is told: in words (`str(report)`), as a page (`to_html`) and in a notebook.

`tb_gradflow/__init__.py` binds this to `Report` (`report.present_with`): the report is the
bottom record type and must not import the story or the export that build on it. The export is
imported on first use, since it needs the reader and TensorBoard's data classes.
"""

from __future__ import annotations

from tb_gradflow.report import Report
from tb_gradflow.story import story_lines


class ReportPresenter:
    """Tells reports with `tb_gradflow.story` and `tb_gradflow.export.report_html`."""

    def text(self, report: Report) -> str:
        """The plain words `str(report)` gives: each cut, where, what it starves, the fix."""
        return "\n".join(story_lines(report))

    def page(self, report: Report) -> str:
        """The self-contained HTML page of the report."""
        from tb_gradflow.export.report_html import report_page

        return report_page(report)

    def notebook(self, report: Report) -> str:
        """The diagnosis in plain HTML, then the page in a sandboxed iframe."""
        from tb_gradflow.export.report_html import notebook_html

        return notebook_html(report)
