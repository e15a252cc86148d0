"""The diagnosis as one self-contained HTML page with plots (`report_html`): the page
(`page.py`), its pieces (`markup.py`), the plots' look (`plot.py`), one module per section with
its plot (timing, where the time goes, divergence, compile time) and the text sections."""

from analyzer.render.html.page import report_html

__all__ = ["report_html"]
