"""The report's charts: matplotlib (Agg) figures in one colour-blind-safe palette, saved deterministically.

Every chart follows the GOV.UK Analysis Function guidance: a headline title that says what the chart
shows, a statistical subtitle (what is plotted, the interval, the base), alt text, and the data
behind it saved beside it (``figures/<name>.csv``) and shown in the page as a table. Groups differ by
marker and line style as well as by colour (Okabe–Ito palette), so no meaning rests on colour alone.

:func:`save` writes ``<name>.svg`` and a 300-dpi ``<name>.png`` and returns the SVG for inlining in the
HTML: its XML prolog dropped, its ids prefixed with the figure name (several figures share one page),
and ``role="img"`` with the alt text as its accessible name. SVG output is deterministic
(``svg.hashsalt`` fixed, no date in the metadata), so an unchanged input gives identical files.

:func:`line_svg` draws the small per-council charts directly as SVG text: the internal report has one
page per council (152 nationally), and a hand-built chart is a hundred times faster than a matplotlib one.
"""

from __future__ import annotations

import contextlib
import functools
import io
import math
import multiprocessing
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from xml.sax.saxutils import escape, quoteattr

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.text import Annotation  # noqa: E402
from PIL import Image  # noqa: E402
from PIL.PngImagePlugin import PngInfo  # noqa: E402

from impactstudy.pipeline.atomic import write_bytes, write_csv, write_text  # noqa: E402
from impactstudy.report import published  # noqa: E402
from impactstudy.report.bidi import neutralise_bidi  # noqa: E402

# Okabe & Ito (2008), ordered by contrast against white (black, blue, vermilion and bluish green reach the
# 3:1 WCAG asks of graphics), so the first series, "all councils", is always the darkest.
PALETTE = ("#000000", "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442")
BAR = PALETTE[1]
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1)), (0, (1, 1)), (0, (5, 5)))
DPI = 300
HEADER_LINE = 10 * 1.2 / 72  # inches per line of the title block (10 pt text, 1.2 spacing)
T = TypeVar("T")
RC = {
    "svg.hashsalt": "impactstudy",
    "svg.fonttype": "none",  # text stays text: smaller, faster, searchable
    "text.parse_math": False,  # labels from the config and data are text: "$5 to $10" is not mathtext
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 9,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "legend.frameon": False,
}
matplotlib.rcParams.update(RC)  # this module owns plotting in the report process


@dataclass(frozen=True)
class Chart:
    """A rendered chart: what the page needs to show it and its data."""

    name: str
    title: str
    subtitle: str
    alt: str
    data: pd.DataFrame  # the data behind the chart, as published (withheld cells as "[c]")
    svg: str  # inline-ready SVG markup


def style(index: int) -> dict:
    """Colour, marker and line style of series ``index`` (cycling through the palette)."""
    return {"color": PALETTE[index % len(PALETTE)], "marker": MARKERS[index % len(MARKERS)],
            "linestyle": LINESTYLES[index % len(LINESTYLES)]}


def new_figure(width: float, height: float, title: str, subtitle: str) -> Figure:
    """A figure with the headline title and statistical subtitle above the plotting area.

    The suptitle carries blank lines for the subtitle so that constrained layout leaves room for it.
    ``height`` allows for a one-line title and a two-line subtitle; each further line adds its own
    height, so a long title (an option label quoted in it, say) never squeezes a short chart's axes to
    nothing (constrained layout would then give up and warn).
    """
    chars = int(width * 13)
    title_text, subtitle_text = _wrap(title, chars), _wrap(subtitle, int(chars * 1.2))
    title_lines = title_text.count("\n") + 1
    header_lines = title_lines + subtitle_text.count("\n") + 1
    fig = Figure(figsize=(width, height + HEADER_LINE * max(0, header_lines - 3)), layout="constrained")
    reserve = "\n" * (subtitle_text.count("\n") + 1)  # empty lines that hold the subtitle's place
    # no explicit y: constrained layout reserves room only for an auto-positioned suptitle
    title = fig.suptitle(f"{title_text}{reserve}", x=0.01, ha="left", fontsize=10, fontweight="bold", color="#0b0c0c")
    subtitle = fig.add_artist(Annotation(subtitle_text, xy=(0, 1), xycoords=title, xytext=(0, -14.5 * title_lines),
                                         textcoords="offset points", ha="left", va="top", fontsize=8, color="#333333"))
    subtitle.set_in_layout(False)
    return fig


_ID = re.compile(r'\bid="([^"]+)"')


def inline_svg(svg: str, prefix: str, alt: str) -> str:
    """SVG text ready for an HTML page: no prolog, ids unique to the figure, an accessible name."""
    svg = svg[svg.index("<svg"):]
    ids = set(_ID.findall(svg))
    for old in sorted(ids, key=len, reverse=True):
        new = f"{prefix}-{old}"
        svg = svg.replace(f'id="{old}"', f'id="{new}"').replace(f'"#{old}"', f'"#{new}"').replace(f"(#{old})", f"(#{new})")
    svg = re.sub(r'<svg ([^>]*?)width="[^"]*" height="[^"]*"', r'<svg \1', svg, count=1)
    return svg.replace("<svg ", f'<svg role="img" aria-label={quoteattr(alt)} focusable="false" ', 1)


def png_bytes(fig: Figure) -> bytes:
    """The figure as a 300-dpi PNG: drawn once by Agg, encoded as RGB with fast zlib settings.

    The figure's background is opaque, so dropping the alpha channel loses nothing; zlib level 1
    makes the file about a fifth larger and the encoding several times faster than matplotlib's default.
    """
    canvas = FigureCanvasAgg(fig)
    with _dpi(fig, DPI):
        canvas.draw()  # a live layout engine runs here, measuring text with this very renderer
        image = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
        out = io.BytesIO()
        info = PngInfo()
        info.add_text("Software", "impactstudy")
        image.convert("RGB").save(out, format="png", dpi=(DPI, DPI), pnginfo=info, compress_level=1)
    return out.getvalue()


@contextlib.contextmanager
def _dpi(fig: Figure, dpi: float) -> Iterator[None]:
    old = fig.dpi
    fig.dpi = dpi
    try:
        yield
    finally:
        fig.dpi = old


def save(fig: Figure, name: str, folder: Path, title: str, subtitle: str, alt: str, data: pd.DataFrame) -> Chart:
    """Write ``<name>.svg``, ``<name>.png`` (300 dpi) and ``<name>.csv`` to ``folder``; the inline chart.

    Constrained layout runs once, while the PNG is drawn, and is then frozen for the SVG: each figure is
    laid out once and drawn twice (text measurement dominates drawing, so every pass counts).
    """
    png = png_bytes(fig)
    # None, not "none": a placeholder engine would make savefig run a whole draw before the real one
    fig.set_layout_engine(None)
    svg_buffer = io.StringIO()
    fig.savefig(svg_buffer, format="svg", metadata={"Date": None, "Creator": "impactstudy"})
    svg = neutralise_bidi(svg_buffer.getvalue())
    write_text(folder / f"{name}.svg", svg)
    write_bytes(folder / f"{name}.png", png)
    write_csv(folder / f"{name}.csv", published.typed(data), bom=True)
    return Chart(name, title, subtitle, alt, data, inline_svg(svg, name, alt))


@dataclass(frozen=True)
class Job:
    """A chart to draw: the drawing function and its arguments, and what :func:`save` needs.

    Jobs are plain data, so :func:`render_all` can draw them in worker processes.
    """

    name: str
    draw: Callable[..., Figure]
    args: tuple
    title: str
    subtitle: str
    alt: str
    data: pd.DataFrame
    folder: Path


def render(job: Job) -> Chart:
    """Draw and save one chart."""
    fig = job.draw(*job.args)
    return save(fig, job.name, job.folder, job.title, job.subtitle, job.alt, job.data)


class Drawer:
    """Draws charts as they are submitted, in worker processes when there are several cores (figures are
    CPU-bound), so drawing overlaps whatever the caller does next (building sections, council pages).

    Use as a context manager; :meth:`charts` waits for every chart and returns them by name.
    """

    def __init__(self, workers: int | None = None):
        self.workers = workers or os.cpu_count() or 1
        self._pool: ProcessPoolExecutor | None = None
        self._pending: dict[str, Future | Chart] = {}

    def submit(self, job: Job) -> None:
        """Start drawing ``job``'s chart."""
        self._pending[job.name] = self.call(render, job)

    def call(self, fn: Callable[..., T], *args: object) -> Future | T:
        """Run ``fn(*args)`` in a worker (after the charts already submitted), or here with one worker."""
        if self.workers <= 1:
            return fn(*args)
        if self._pool is None:
            start = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context(start))
        return self._pool.submit(fn, *args)

    def charts(self) -> dict[str, Chart]:
        """Every submitted chart by name, once drawn."""
        return {name: item.result() if isinstance(item, Future) else item for name, item in self._pending.items()}

    def __enter__(self) -> Drawer:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


# ------------------------------------------------------------------------------------------ charts


def trajectory_chart(frame: pd.DataFrame, panels: Sequence[tuple[str, str]], series: Sequence[tuple[str, str]],
                     waves: Sequence[tuple[str, str]], title: str, subtitle: str, ylim: tuple[float, float] | None = None) -> Figure:
    """Small multiples, one per measure (``panels``: name, label), lines per group (``series``).

    ``frame`` has ``measure, group, wave, mean, ci_low, ci_high``; a withheld point is NaN and is not drawn.
    The panels share ``ylim`` when it is given (measures on one scale), else each has its own y axis.
    """
    columns = min(3, len(panels))
    rows = int(np.ceil(len(panels) / columns))
    fig = new_figure(2.6 * columns + 0.4, 2.1 * rows + 1.0, title, subtitle)
    axes = np.atleast_1d(fig.subplots(rows, columns, sharex=True, sharey=ylim is not None, squeeze=False)).ravel()
    x = np.arange(len(waves))
    offsets = np.linspace(-0.12, 0.12, len(series)) if len(series) > 1 else [0.0]
    for ax, (measure, label) in zip(axes, panels):
        for k, (group, group_label) in enumerate(series):
            cell = frame[(frame["measure"] == measure) & (frame["group"] == group)].set_index("wave").reindex([w for w, _ in waves])
            mean = cell["mean"].to_numpy(dtype=float)
            low, high = cell["ci_low"].to_numpy(dtype=float), cell["ci_high"].to_numpy(dtype=float)
            st = style(k)
            ax.vlines(x + offsets[k], low, high, color=st["color"], linewidth=1.0)  # one artist per series
            withheld = not np.isfinite(mean).any()
            ax.plot(x + offsets[k], mean, markersize=4, linewidth=1.2,
                    label=f"{group_label}: withheld [c]" if withheld else group_label, **st)
        ax.set_title(_wrap(label, 34))
        ax.set_xticks(x, [_wrap(w, 14) for _, w in waves], fontsize=7)
        ax.grid(axis="y", color="#dddddd", linewidth=0.5)
        if ylim:
            ax.set_ylim(*ylim)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    if len(series) > 1:
        fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=min(len(series), 4), fontsize=8)
    return fig


def forest_chart(frame: pd.DataFrame, rows: Sequence[tuple[str, str]], series: Sequence[tuple[str, str]], title: str,
                 subtitle: str, xlabel: str) -> Figure:
    """Estimates with 95% intervals, one line per row (``rows``: key, label), series offset within a line.

    ``frame`` has ``row, series, estimate, ci_low, ci_high``; withheld estimates are NaN and not drawn.
    """
    fig = new_figure(7.0, 0.42 * len(rows) * max(1, len(series)) ** 0.5 + 2.0, title, subtitle)
    ax = fig.subplots()
    y = np.arange(len(rows))[::-1].astype(float)
    offsets = np.linspace(0.22, -0.22, len(series)) if len(series) > 1 else [0.0]
    for k, (key, label) in enumerate(series):
        cell = frame[frame["series"] == key].set_index("row").reindex([r for r, _ in rows])
        est = cell["estimate"].to_numpy(dtype=float)
        st = style(k)
        ax.hlines(y + offsets[k], cell["ci_low"].to_numpy(dtype=float), cell["ci_high"].to_numpy(dtype=float),
                  color=st["color"], linewidth=1.1)
        withheld = not np.isfinite(est).any()
        ax.plot(est, y + offsets[k], st["marker"], color=st["color"], markersize=4,
                label=f"{label}: withheld [c]" if withheld else label)
    ax.axvline(0, color="#555555", linewidth=0.8, linestyle="--")
    ax.set_yticks(y, [_wrap(label, 40) for _, label in rows], fontsize=8)
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", color="#dddddd", linewidth=0.5)
    if len(series) > 1:
        handles, labels = ax.get_legend_handles_labels()
        fig.legend(handles, [_wrap(label, 45) for label in labels], loc="outside lower center",
                   ncols=min(len(series), 3), fontsize=8)
    return fig


def bar_chart(frame: pd.DataFrame, title: str, subtitle: str, xlabel: str, percent: bool = True) -> Figure:
    """Horizontal bars with intervals and the value written at each bar (``label, value, ci_low, ci_high``).

    Withheld bars (NaN) are left empty and labelled ``[c]``.
    """
    fig = new_figure(7.0, 0.36 * len(frame) + 2.0, title, subtitle)
    ax = fig.subplots()
    y = np.arange(len(frame))[::-1]
    scale = 100.0 if percent else 1.0
    value = frame["value"].to_numpy(dtype=float) * scale
    ax.barh(y, np.nan_to_num(value), color=BAR, height=0.6)
    if "ci_low" in frame:
        low, high = frame["ci_low"].to_numpy(dtype=float) * scale, frame["ci_high"].to_numpy(dtype=float) * scale
        err = np.vstack([value - low, high - value])
        ax.errorbar(value, y, xerr=np.where(np.isnan(err), 0, err), fmt="none", ecolor="#000000", capsize=2, linewidth=0.9)
    top = np.nanmax(np.append(frame.get("ci_high", frame["value"]).to_numpy(dtype=float) * scale, value)) if np.isfinite(value).any() else 1.0
    for yi, v in zip(y, value):
        text = "[c]" if np.isnan(v) else (f"{v:.0f}%" if percent else f"{v:,.0f}")
        ax.text((0 if np.isnan(v) else v) + top * 0.01, yi + 0.32, text, va="center", fontsize=7)
    ax.set_yticks(y, [_wrap(str(label), 40) for label in frame["label"]], fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_xlim(0, 100 if percent else max(top * 1.15, 1))
    ax.grid(axis="x", color="#dddddd", linewidth=0.5)
    return fig


def stacked_bar_chart(frame: pd.DataFrame, levels: Sequence[str], title: str, subtitle: str) -> Figure:
    """Horizontal 100% stacked bars: one bar per row (``label``), one segment per answer level (columns
    ``levels``, shares 0-1, in scale order). Segments carry their percentage when wide enough and a
    hatch pattern besides their shade, so the levels can be told apart without colour. Withheld rows
    (NaN) are left empty and labelled ``[c]``."""
    fig = new_figure(7.5, 0.34 * len(frame) + 2.4, title, subtitle)
    ax = fig.subplots()
    y = np.arange(len(frame))[::-1]
    shades = [matplotlib.colormaps["Blues"](x) for x in np.linspace(0.15, 0.95, len(levels))]
    hatches = ["", "//", "", "\\\\", "", "xx", "", ".."]
    left = np.zeros(len(frame))
    for k, level in enumerate(levels):
        width = np.nan_to_num(frame[level].to_numpy(dtype=float)) * 100
        ax.barh(y, width, left=left, color=shades[k], edgecolor="#ffffff", linewidth=0.5, height=0.65,
                hatch=hatches[k % len(hatches)], label=str(level))
        for yi, x0, w in zip(y, left, width):
            if w >= 7:
                ax.text(x0 + w / 2, yi, f"{w:.0f}", ha="center", va="center", fontsize=6.5,
                        color="#ffffff" if k >= len(levels) / 2 else "#000000",
                        bbox={"boxstyle": "round,pad=0.15", "fc": shades[k], "ec": "none"})
        left += width
    for yi, total in zip(y, left):
        if total == 0:
            ax.text(1, yi, "[c]", va="center", fontsize=7)
    ax.set_yticks(y, [_wrap(str(label), 44) for label in frame["label"]], fontsize=7.5)
    ax.set_xlim(0, 100)
    ax.set_xlabel("Percentage of answers")
    ax.legend(ncols=min(len(levels), 3), fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12 - 0.3 / max(len(frame), 1)),
              frameon=False)
    return fig


def dumbbell_chart(frame: pd.DataFrame, first: str, second: str, title: str, subtitle: str,
                   xlabel: str = "Percentage of respondents") -> Figure:
    """Two shares per row joined by a line (``label, first, second``), as percentages."""
    fig = new_figure(7.0, 0.38 * len(frame) + 2.0, title, subtitle)
    ax = fig.subplots()
    y = np.arange(len(frame))[::-1]
    a, b = frame["first"].to_numpy(dtype=float) * 100, frame["second"].to_numpy(dtype=float) * 100
    ax.hlines(y, np.fmin(a, b), np.fmax(a, b), color="#999999", linewidth=1.5)
    s0, s1 = style(1), style(2)
    ax.plot(a, y, s0["marker"], color=s0["color"], label=first, markersize=6)
    ax.plot(b, y, s1["marker"], color=s1["color"], label=second, markersize=6)
    ax.set_yticks(y, [_wrap(str(label), 40) for label in frame["label"]], fontsize=8)
    ax.set_xlim(0, 100)
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", color="#dddddd", linewidth=0.5)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    return fig


def flow_chart(frame: pd.DataFrame, title: str, subtitle: str) -> Figure:
    """Councils through the waves: a box per wave (councils present), arrows labelled stayed / left / joined.

    ``frame`` has ``wave_label, councils, stayed, joined, left`` as display text (withheld as ``[c]``).
    """
    n = len(frame)
    fig = new_figure(max(2.4 * n, 6.0), 3.2, title, subtitle)
    ax = fig.subplots()
    ax.set_axis_off()
    ax.set_xlim(0, n)
    ax.set_ylim(0, 1)
    for k, row in enumerate(frame.itertuples()):
        ax.text(k + 0.5, 0.55, f"{_wrap(row.wave_label, 22)}\n\n{row.councils} councils", ha="center", va="center",
                fontsize=8, bbox={"boxstyle": "round,pad=0.5", "facecolor": "#E8F1F8", "edgecolor": BAR})
        if k > 0:
            ax.annotate("", xy=(k + 0.1, 0.55), xytext=(k - 0.1, 0.55),
                        arrowprops={"arrowstyle": "-|>", "color": "#000000", "linewidth": 1.0})
            ax.text(k, 0.12, f"stayed {row.stayed}\nleft {row.left}\njoined {row.joined}", ha="center", va="center",
                    fontsize=7)
    return fig


def _wrap(text: str, width: int) -> str:
    words, lines, line = str(text).split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    lines.append(line)
    return "\n".join(lines)


# ------------------------------------------------------------------------------- per-council charts


def line_svg(series: Iterable[tuple[str, Sequence[float]]], xlabels: Sequence[str], alt: str,
             ylim: tuple[float, float], width: int = 360, height: int = 200) -> str:
    """A small line chart as SVG text: one polyline per series with a distinct marker and dash, and a key.

    NaN values break a line. Text is XML-escaped, so labels from the data stay text.
    """
    left, right, top, bottom = 34, 10, 10, 42
    plot_w, plot_h = width - left - right, height - top - bottom
    lo, hi = ylim
    n = max(len(xlabels), 1)

    def px(i: int) -> float:
        return left + (plot_w * (i + 0.5) / n)

    def py(v: float) -> float:
        return top + plot_h * (1 - (v - lo) / (hi - lo))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" aria-label={quoteattr(alt)}>',
             _line_svg_frame(tuple(xlabels), (lo, hi), width, height)]
    dashes = ("", "6 3", "2 2", "8 3 2 3")
    shapes = ("circle", "rect", "diamond", "triangle")
    for k, (name, values) in enumerate(series):
        colour, dash, shape = PALETTE[k % len(PALETTE)], dashes[k % len(dashes)], shapes[k % len(shapes)]
        points = [(px(i), py(v)) for i, v in enumerate(values) if v is not None and math.isfinite(v)]
        if len(points) > 1:
            coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
            parts.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2"{dash_attr}/>')
        for x, y in points:
            parts.append(_marker(shape, x, y, colour))
        key_x = left + k * (plot_w / max(1, len(list(series)) if isinstance(series, list) else 3))
        parts.append(_marker(shape, key_x + 4, height - 12, colour))
        parts.append(f'<text x="{key_x + 12:.1f}" y="{height - 9}" font-size="9">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


@functools.lru_cache(maxsize=64)
def _line_svg_frame(xlabels: tuple[str, ...], ylim: tuple[float, float], width: int, height: int) -> str:
    """The plotting area, y grid and labels and x labels of :func:`line_svg`: the same for every chart
    of a study, so drawn once (a national internal report has thousands of these charts)."""
    left, right, top, bottom = 34, 10, 10, 42
    plot_w, plot_h = width - left - right, height - top - bottom
    lo, hi = ylim
    n = max(len(xlabels), 1)

    def py(v: float) -> float:
        return top + plot_h * (1 - (v - lo) / (hi - lo))

    parts = [f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#bbbbbb"/>']
    for tick in np.arange(np.ceil(lo), np.floor(hi) + 1):
        parts.append(f'<text x="{left - 6}" y="{py(tick) + 3:.1f}" font-size="9" text-anchor="end">{tick:g}</text>')
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{py(tick):.1f}" y2="{py(tick):.1f}" stroke="#eeeeee"/>')
    for i, label in enumerate(xlabels):
        parts.append(f'<text x="{left + (plot_w * (i + 0.5) / n):.1f}" y="{top + plot_h + 12}" font-size="9" '
                     f'text-anchor="middle">{escape(label)}</text>')
    return "".join(parts)


def _marker(shape: str, x: float, y: float, colour: str) -> str:
    if shape == "rect":
        return f'<rect x="{x - 3.5:.1f}" y="{y - 3.5:.1f}" width="7" height="7" fill="{colour}"/>'
    if shape == "diamond":
        return f'<polygon points="{x:.1f},{y - 4.5:.1f} {x + 4.5:.1f},{y:.1f} {x:.1f},{y + 4.5:.1f} {x - 4.5:.1f},{y:.1f}" fill="{colour}"/>'
    if shape == "triangle":
        return f'<polygon points="{x:.1f},{y - 4.5:.1f} {x + 4.5:.1f},{y + 3.5:.1f} {x - 4.5:.1f},{y + 3.5:.1f}" fill="{colour}"/>'
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}"/>'
