"""Plotly defaults: figures are embedded as HTML fragments; plotly.js itself is served from our static files."""

import plotly.graph_objects as go

STATUS_COLOURS = {"ok": "#2f9e44", "error": "#e03131", "warning": "#f08c00", "info": "#1c7ed6", "muted": "#868e96"}


def figure_html(figure: go.Figure, *, height: int = 320) -> str:
    figure.update_layout(
        height=height,
        margin={"l": 40, "r": 10, "t": 30, "b": 40},
        template="plotly_white",
        font={"family": "system-ui, sans-serif", "size": 12},
        legend={"orientation": "h", "y": -0.2},
    )
    return figure.to_html(
        include_plotlyjs=False, full_html=False, config={"displaylogo": False, "responsive": True}, default_width="100%"
    )
