"""Charts as inline SVG, drawn by pygal: no script (pygal's tooltip script and config are
removed), no reference to anything outside the document, text kept as text (it prints and
it can be searched)."""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree

import pygal
from pygal.style import Style

STYLE = Style(background="white", plot_background="white", foreground="#222",
              foreground_strong="#000", foreground_subtle="#666", opacity=".8",
              font_family="DejaVu Sans, Liberation Sans, Arial, sans-serif",
              colors=("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
                      "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"))
COMMON = {"style": STYLE, "js": [], "disable_xml_declaration": True, "width": 900,
          "height": 320, "explicit_size": False, "legend_at_bottom": True,
          "print_values": False, "truncate_legend": 40, "truncate_label": 24}


def line(title: str, labels: list[str], series: dict[str, list[float | None]], *,
         y_title: str = "", y_range: tuple[float, float] | None = None) -> str:
    chart = pygal.Line(title=title, y_title=y_title, range=y_range, x_label_rotation=30,
                       x_labels_major_count=12, show_minor_x_labels=False,
                       allow_interruptions=True, y_labels=_counts(series, y_range), **COMMON)
    chart.x_labels = labels
    for name, values in series.items():
        chart.add(name, values)
    return _svg(chart)


def bars(title: str, labels: list[str], series: dict[str, list[float | None]], *,
         y_title: str = "", stacked: bool = False, horizontal: bool = False) -> str:
    kind = {(False, False): pygal.Bar, (True, False): pygal.StackedBar,
            (False, True): pygal.HorizontalBar, (True, True): pygal.HorizontalStackedBar}
    chart = kind[(stacked, horizontal)](title=title, y_title=y_title, x_label_rotation=0
                                        if horizontal else 20,
                                        y_labels=_counts(series, None, stacked), **COMMON)
    chart.x_labels = labels
    for name, values in series.items():
        chart.add(name, values)
    return _svg(chart)


def _counts(series: dict[str, list[float | None]], y_range: tuple[float, float] | None,
            stacked: bool = False) -> list[int] | None:
    """Whole-number axis labels for counts (hosts, runs, days): pygal would label a scale up
    to 3 in tenths. None (pygal's own) for percentages and large values."""
    if y_range is not None:
        return None
    columns = zip(*series.values(), strict=False) if series else iter(())
    if stacked:
        top = max((sum(v or 0 for v in col) for col in columns), default=0)
    else:
        top = max((v or 0 for vs in series.values() for v in vs), default=0)
    if top > 20 or any(isinstance(v, float) and not v.is_integer()
                       for vs in series.values() for v in vs if v is not None):
        return None
    return list(range(0, int(top) + 2))


def _svg(chart: Any) -> str:
    """The chart's SVG element, without scripts, comments or an XML declaration."""
    root = chart.render_tree()
    for parent in list(root.iter()):
        for child in list(parent):
            tag = child.tag if isinstance(child.tag, str) else ""
            if not tag or tag.rsplit("}", 1)[-1] == "script":
                parent.remove(child)  # comments (not str tags) and scripts
    ElementTree.register_namespace("", "http://www.w3.org/2000/svg")
    ElementTree.register_namespace("xlink", "http://www.w3.org/1999/xlink")
    text = ElementTree.tostring(root, encoding="unicode")
    return text
