"""Plotly defaults: figures are embedded as HTML fragments; plotly.js itself is served from our static files.

A fragment is a `<div>` carrying the figure as JSON in a data attribute, drawn by `static/js/charts.js`: plotly.py's
own embedding is an inline script, which the Content-Security-Policy (own static files only) refuses to run.
"""

from functools import cache
from typing import Any

import plotly.io as pio
from django.utils.html import escape

PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}


def _embed(figure: Any) -> str:
    # pio.to_json handles numpy arrays and dates as plotly.py's own embedding would; escape() makes it attribute-safe.
    payload = pio.to_json({"data": figure["data"], "layout": figure["layout"], "config": PLOTLY_CONFIG}, validate=False)
    return f'<div class="cl-figure" data-figure="{escape(payload)}"></div>'


STATUS_COLOURS = {"ok": "#2f9e44", "error": "#e03131", "warning": "#f08c00", "info": "#1c7ed6", "muted": "#868e96"}


@cache
def figure_template() -> dict:
    """The look every figure shares (plotly.py's "plotly_white"), sent once per page (see console/_plotly.html)
    rather than in each figure, where it was a third of a dashboard page's HTML."""
    return pio.templates["plotly_white"].to_plotly_json()


def figure_html(data: list[dict], layout: dict, *, height: int = 320) -> str:
    """A figure as an HTML fragment, from plain trace and layout dicts (plotly.js's own JSON shapes).

    Dicts, not `go.Figure`: plotly.py's objects validate and deep-copy every property, about 100 ms per figure, which
    a page with six figures cannot afford.
    """
    figure = {
        "data": data,
        "layout": {
            "height": height,
            "margin": {"l": 40, "r": 10, "t": 30, "b": 40},
            "font": {"family": "system-ui, sans-serif", "size": 12},
            "legend": {"orientation": "h", "y": -0.2},
            **layout,
        },
    }
    return _embed(figure)
