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
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg  # noqa: E402
from matplotlib.font_manager import FontProperties  # noqa: E402
from matplotlib.legend import Legend  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.text import Annotation, Text  # noqa: E402
from PIL import Image  # noqa: E402
from PIL.PngImagePlugin import PngInfo  # noqa: E402

from impactstudy.pipeline.atomic import write_bytes, write_csv, write_text  # noqa: E402
from impactstudy.pipeline.progress import Progress  # noqa: E402
from impactstudy.report import published  # noqa: E402
from impactstudy.report.bidi import neutralise_bidi  # noqa: E402

# Okabe & Ito (2008), ordered by contrast against white (black, blue, vermilion and bluish green reach the
# 3:1 WCAG asks of graphics), so the first series, "all councils", is always the darkest.
PALETTE = ("#000000", "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442")
BAR = PALETTE[1]
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p", "d", "8", "H")
DISTINCT_SERIES = 2 * len(MARKERS)  # series told apart by marker shape and fill alone (colour aside)
LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1)), (0, (1, 1)), (0, (5, 5)))
DPI = 300
HEADER_LINE = 10 * 1.2 / 72  # inches per line of the title block (10 pt text, 1.2 spacing)
PANEL_WIDTH = 2.6  # inches per small multiple of the trajectory charts
MARGIN = 0.07  # inches kept clear at the canvas's left and right edges by the title and legends
TITLE_GID, SUBTITLE_GID = "chart-title", "chart-subtitle"  # the title block's ids in the SVG
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
    """A rendered chart: what the page and the Word document need to show it and its data.

    The page and the document give the title and subtitle as their own heading or caption, so ``svg``
    (inline) and ``body_png`` (Word) are the chart without its title block; the exported
    ``figures/<name>.svg`` and ``.png``, which travel alone, keep it.
    """

    name: str
    title: str
    subtitle: str
    alt: str
    data: pd.DataFrame  # the data behind the chart, as published (withheld cells as "[c]")
    svg: str  # inline-ready SVG markup, without the title block
    body_png: bytes = b""  # the 300-dpi PNG without the title block
    layout_problems: tuple[str, ...] = ()  # text or legends off the canvas or over the title (none expected)


def style(index: int) -> dict:
    """Colour, marker, marker fill and line style of series ``index`` (matplotlib ``plot`` keywords).

    Colours and line styles cycle every eight series, so a series is told apart by its marker: the
    first :data:`DISTINCT_SERIES` series each have their own shape and fill (the shapes filled, then the
    same shapes hollow), whatever the colour, so they stay distinct in greyscale and for readers who do
    not see the colours. Beyond that the markers repeat, but not with the same colour and line style
    until series 120.
    """
    colour = PALETTE[index % len(PALETTE)]
    hollow = (index // len(MARKERS)) % 2 == 1
    return {"color": colour, "marker": MARKERS[index % len(MARKERS)],
            "markerfacecolor": "white" if hollow else colour, "markeredgecolor": colour,
            "linestyle": LINESTYLES[index % len(LINESTYLES)]}


def new_figure(width: float, height: float, title: str, subtitle: str) -> Figure:
    """A figure with the headline title and statistical subtitle above the plotting area.

    The title and subtitle are wrapped to the figure's width as measured in their font, so neither runs
    off the canvas whatever the labels. The suptitle carries blank lines for the subtitle so that
    constrained layout leaves room for it. ``height`` allows for a one-line title and a two-line
    subtitle; each further line adds its own height, so a long title (an option label quoted in it, say)
    never squeezes a short chart's axes to nothing (constrained layout would then give up and warn).

    The title block is tagged (``gid``): the page and the Word document show the title as their own
    heading or caption, so :func:`save` cuts the block out of the inline SVG and the Word picture, and
    only the exported ``figures/<name>.svg`` and ``.png`` carry it.
    """
    room = width - 2 * MARGIN
    title_text, subtitle_text = wrap_to(title, room, 10, bold=True), wrap_to(subtitle, room, 8)
    title_lines = title_text.count("\n") + 1
    header_lines = title_lines + subtitle_text.count("\n") + 1
    fig = Figure(figsize=(width, height + HEADER_LINE * max(0, header_lines - 3)), layout="constrained")
    reserve = "\n" * (subtitle_text.count("\n") + 1)  # empty lines that hold the subtitle's place
    # no explicit y: constrained layout reserves room only for an auto-positioned suptitle
    title = fig.suptitle(f"{title_text}{reserve}", x=MARGIN / width, ha="left", fontsize=10, fontweight="bold",
                         color="#0b0c0c", gid=TITLE_GID)
    subtitle = fig.add_artist(Annotation(subtitle_text, xy=(0, 1), xycoords=title, xytext=(0, -14.5 * title_lines),
                                         textcoords="offset points", ha="left", va="top", fontsize=8, color="#333333",
                                         gid=SUBTITLE_GID))
    subtitle.set_in_layout(False)
    return fig


@functools.lru_cache(maxsize=1)
def _measuring() -> RendererAgg:
    return RendererAgg(8, 8, DPI)  # at the PNG's resolution: at 72 dpi hinting makes text up to 3% narrower


@functools.lru_cache(maxsize=4096)
def text_width(text: str, size: float, bold: bool = False) -> float:
    """Width in inches of one line of ``text`` in the charts' font at ``size`` points."""
    prop = FontProperties(family=RC["font.family"], size=size, weight="bold" if bold else "normal")
    width, _, _ = _measuring().get_text_width_height_descent(text, prop, ismath=False)
    return width / DPI


def wrap_to(text: str, inches: float, size: float, bold: bool = False) -> str:
    """``text`` broken into lines no wider than ``inches`` in the charts' font (a word too long for a line
    is broken within itself), so a label from any study fits where it is drawn."""
    lines: list[str] = []
    line = ""
    for word in str(text).split():
        while text_width(word, size, bold) > inches and len(word) > 1:  # break an overlong word
            cut = max(1, max(k for k in range(1, len(word) + 1) if k == 1 or text_width(word[:k], size, bold) <= inches))
            if line:
                lines.append(line)
                line = ""
            lines.append(word[:cut])
            word = word[cut:]
        candidate = f"{line} {word}".strip()
        if line and text_width(candidate, size, bold) > inches:
            lines.append(line)
            line = word
        else:
            line = candidate
    lines.append(line)
    return "\n".join(lines)


def figure_legend(fig: Figure, handles: Sequence, labels: Sequence[str], size: float = 8, most: int = 4,
                  title: str = "") -> Legend:
    """The figure's legend below the charts, in as many columns as fit its width (:func:`legend_layout`),
    with ``title`` (already wrapped) as its left-aligned heading."""
    ncols, wrapped = legend_layout(labels, fig.get_figwidth(), size, most)
    return fig.legend(handles, wrapped, loc="outside lower center", ncols=ncols, fontsize=size,
                      title=title or None, title_fontsize=7, alignment="left")


def legend_layout(labels: Sequence[str], width: float, size: float = 8, most: int = 4) -> tuple[int, list[str]]:
    """How many columns a legend of ``labels`` below a ``width``-inch figure can have, and the labels
    wrapped to fit them: the most columns (up to ``most``) whose labels fit in two lines each, else one
    column of labels wrapped to the width. Matplotlib's spacing: a 2-em handle, 0.8-em pad, 2-em gap."""
    em = size / 72
    room = width - 2 * MARGIN - 0.8 * em  # the legend's border padding
    for ncols in range(min(most, len(labels)), 0, -1):
        column = (room - (ncols - 1) * 2.0 * em) / ncols - 2.8 * em
        if column <= 0:
            continue
        wrapped = [wrap_to(label, column, size) for label in labels]
        if ncols == 1 or all(w.count("\n") <= 1 for w in wrapped):
            return ncols, wrapped
    return 1, [wrap_to(label, max(room - 2.8 * em, 0.5), size) for label in labels]


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


@dataclass(frozen=True)
class Drawn:
    """A figure drawn at 300 dpi: the PNG with and without its title block, and what lies out of place."""

    png: bytes
    body_png: bytes
    header: float  # the share of the height, from the top, taken by the title block (0 without one)
    problems: tuple[str, ...]


def draw_png(fig: Figure) -> Drawn:
    """Draw the figure once by Agg at 300 dpi and encode it as PNG, with and without its title block.

    The figure's background is opaque, so the images are RGB; zlib level 1 makes the files about a fifth
    larger and the encoding several times faster than matplotlib's default. The layout is checked on the
    same drawing (:func:`layout_problems`).
    """
    canvas = FigureCanvasAgg(fig)
    with _dpi(fig, DPI):
        canvas.draw()  # a live layout engine runs here, measuring text with this very renderer
        renderer = canvas.get_renderer()
        height = fig.bbox.height
        header = [a.get_window_extent(renderer) for a in _header(fig)]
        top = height - min(box.y0 for box in header) if header else 0.0  # pixels from the top
        problems = layout_problems(fig, renderer, height - top)
        image = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba(), "raw", "RGBA", 0, 1).convert("RGB")
    body = image.crop((0, min(int(round(top)), image.height - 1), image.width, image.height))
    return Drawn(_encode(image), _encode(body), top / height, problems)


def _encode(image: Image.Image) -> bytes:
    out = io.BytesIO()
    info = PngInfo()
    info.add_text("Software", "impactstudy")
    image.save(out, format="png", dpi=(DPI, DPI), pnginfo=info, compress_level=1)
    return out.getvalue()


def _header(fig: Figure) -> list[Text]:
    """The title block's artists (title and subtitle), with text in them."""
    return [a for a in fig.findobj(Text) if a.get_gid() in (TITLE_GID, SUBTITLE_GID) and a.get_text().strip()]


def layout_problems(fig: Figure, renderer: RendererAgg, header_bottom: float) -> tuple[str, ...]:
    """Every visible text and legend lying (more than a pixel) beyond the canvas, and every part of the
    chart reaching into the title block (above ``header_bottom``, display pixels from the bottom).

    A clipped legend or label loses what the reader needs; a chart part over the title block would be cut
    from the picture the Word document shows. Called on the drawing the PNG is made from.
    """
    width, height = fig.bbox.width, fig.bbox.height
    header = set(_header(fig))
    found = []
    # an axis keeps tick objects it does not draw (beyond its limits, left from an earlier layout): only the
    # labels it draws count (``_update_ticks`` is what the axis's own draw uses to choose them)
    kept, drawn = set(), set()
    for ax in [ax for ax in fig.axes if ax.get_visible()]:
        for axis in (ax.xaxis, ax.yaxis):
            kept |= {id(t) for tick in (*axis.majorTicks, *axis.minorTicks) for t in (tick.label1, tick.label2)}
            if not ax.axison or not axis.get_visible():
                continue
            ticks = axis._update_ticks()
            drawn |= {id(t) for tick in ticks for t in (tick.label1, tick.label2)}
            # level labels (a turned label's box is wider than its text: not compared)
            level = [(t.get_text(), t.get_window_extent(renderer)) for tick in ticks for t in (tick.label1,)
                     if t.get_visible() and t.get_text().strip() and not t.get_rotation() % 180]
            for k, (text, box) in enumerate(level):
                if any(box.overlaps(other) for _, other in level[k + 1:]):
                    found.append(f"tick labels of {ax.get_title()!r} overlap ({text[:40]!r})")
                    break

    def shown(a: object) -> bool:
        if not a.get_visible() or (isinstance(a, Text) and not a.get_text().strip()):
            return False
        if id(a) in kept and id(a) not in drawn:
            return False
        return a.axes is None or a.axes.get_visible()

    for artist in fig.findobj(lambda a: isinstance(a, (Text, Legend)) and shown(a)):
        box = artist.get_window_extent(renderer)
        what = f"legend {[t.get_text() for t in artist.get_texts()][:3]}" if isinstance(artist, Legend) \
            else f"text {artist.get_text()[:60]!r}"
        if box.x0 < -1 or box.y0 < -1 or box.x1 > width + 1 or box.y1 > height + 1:
            found.append(f"{what} lies beyond the canvas ({box.x0:.0f}, {box.y0:.0f} to {box.x1:.0f}, {box.y1:.0f} "
                         f"of {width:.0f} x {height:.0f} px)")
        elif artist not in header and header and box.y1 > header_bottom + 1:
            found.append(f"{what} reaches into the title block")
    loose = [(f"legend {[t.get_text() for t in g.get_texts()][:2]}", g.get_window_extent(renderer)) for g in fig.legends]
    loose += [(f"text {t.get_text()[:40]!r}", t.get_window_extent(renderer)) for t in fig.texts
              if t.get_visible() and t.get_text().strip() and t not in header]
    for k, (what, box) in enumerate(loose):  # the figure's own legends and texts are placed apart
        found += [f"{what} overlaps {other}" for other, second in loose[k + 1:] if box.overlaps(second)]
    for ax in fig.axes:
        if ax.get_visible() and header and ax.get_window_extent(renderer).y1 > header_bottom + 1:
            found.append(f"the plotting area {ax.get_title()!r} reaches into the title block")
    return tuple(found)


@contextlib.contextmanager
def _dpi(fig: Figure, dpi: float) -> Iterator[None]:
    old = fig.dpi
    fig.dpi = dpi
    try:
        yield
    finally:
        fig.dpi = old


_TITLE_BLOCK = re.compile(rf'<g id="(?:{TITLE_GID}|{SUBTITLE_GID})">.*?</g>\s*', re.S)
_VIEWBOX = re.compile(r'viewBox="0 0 ([0-9.]+) ([0-9.]+)"')


def without_title(svg: str, header: float) -> str:
    """The SVG with its title block removed and its view box starting below it (``header``: share of
    the height the block took, from the top)."""
    svg = _TITLE_BLOCK.sub("", svg)
    found = _VIEWBOX.search(svg)
    if not found or header <= 0:
        return svg
    width, height = float(found[1]), float(found[2])
    top = height * header
    return svg[:found.start()] + f'viewBox="0 {top:.2f} {width:g} {height - top:.2f}"' + svg[found.end():]


def save(fig: Figure, name: str, folder: Path, title: str, subtitle: str, alt: str, data: pd.DataFrame) -> Chart:
    """Write ``<name>.svg``, ``<name>.png`` (300 dpi) and ``<name>.csv`` to ``folder``; the inline chart.

    Constrained layout runs once, while the PNG is drawn, and is then frozen for the SVG: each figure is
    laid out once and drawn twice (text measurement dominates drawing, so every pass counts). The files
    keep the title block; the inline SVG and the Word PNG of the returned :class:`Chart` leave it out.
    """
    drawn = draw_png(fig)
    # None, not "none": a placeholder engine would make savefig run a whole draw before the real one
    fig.set_layout_engine(None)
    svg_buffer = io.StringIO()
    fig.savefig(svg_buffer, format="svg", metadata={"Date": None, "Creator": "impactstudy"})
    svg = neutralise_bidi(svg_buffer.getvalue())
    write_text(folder / f"{name}.svg", svg)
    write_bytes(folder / f"{name}.png", drawn.png)
    write_csv(folder / f"{name}.csv", published.typed(data), bom=True)
    return Chart(name, title, subtitle, alt, data, inline_svg(without_title(svg, drawn.header), name, alt),
                 drawn.body_png, drawn.problems)


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

    def __init__(self, workers: int | None = None, progress: Progress | None = None):
        self.workers = workers or os.cpu_count() or 1
        self.progress = progress  # counts each piece of work as it is started and finished
        self._pool: ProcessPoolExecutor | None = None
        self._pending: dict[str, Future | Chart] = {}

    def submit(self, job: Job) -> None:
        """Start drawing ``job``'s chart."""
        self._pending[job.name] = self.call(render, job)

    def call(self, fn: Callable[..., T], *args: object) -> Future | T:
        """Run ``fn(*args)`` in a worker (after the charts already submitted), or here with one worker."""
        if self.workers <= 1:
            done = fn(*args)
        else:
            if self._pool is None:
                start = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
                self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context(start))
            done = self._pool.submit(fn, *args)
        if self.progress is not None:
            self.progress.track([done])
        return done

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
    ticks, key = wave_ticks([w for _, w in waves], PANEL_WIDTH - 0.4, 7)
    width = PANEL_WIDTH * columns + 0.4
    key = wrap_to(key, width - 2 * MARGIN, 7) if key else ""
    fig = new_figure(width, 2.1 * rows + 1.0 + (key.count("\n") + 1) * 7 * 1.2 / 72 * bool(key), title, subtitle)
    if key and len(series) <= 1:  # with a legend, the key is its heading (two texts at the bottom would collide)
        fig.supxlabel(key, x=MARGIN / width, ha="left", fontsize=7)
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
        ax.set_title(wrap_to(label, PANEL_WIDTH - 0.7, RC["axes.titlesize"], bold=True))  # beside the y labels
        ax.set_xticks(x, ticks, fontsize=7)
        ax.grid(axis="y", color="#dddddd", linewidth=0.5)
        if ylim:
            ax.set_ylim(*ylim)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    if len(series) > 1:
        figure_legend(fig, *axes[0].get_legend_handles_labels(), title=key)
    return fig


def wave_ticks(labels: Sequence[str], width: float, size: float) -> tuple[list[str], str]:
    """Wave labels for an x axis ``width`` inches wide, and a key when they need one.

    Labels are wrapped to their share of the width when every word fits and no label needs more than
    three lines; otherwise (many waves, long labels) the axis numbers the waves 1, 2, … and the key says
    which is which ("Waves: 1 = …; 2 = …"), so labels never run into each other or squeeze the chart.
    """
    room = width / max(len(labels), 1) - 0.06
    wrapped = [wrap_to(label, room, size) for label in labels]
    fits = all(text_width(word, size) <= room for label in labels for word in label.split())
    if fits and all(w.count("\n") <= 2 for w in wrapped):
        return wrapped, ""
    return [str(k) for k in range(1, len(labels) + 1)], "Waves: " + "; ".join(
        f"{k} = {' '.join(str(label).split())}" for k, label in enumerate(labels, start=1))


def forest_chart(frame: pd.DataFrame, rows: Sequence[tuple[str, str]], series: Sequence[tuple[str, str]], title: str,
                 subtitle: str, xlabel: str) -> Figure:
    """Estimates with 95% intervals, one line per row (``rows``: key, label), series offset within a line.

    ``frame`` has ``row, series, estimate, ci_low, ci_high``; withheld estimates are NaN and not drawn.
    """
    fig = new_figure(7.0, 0.42 * len(rows) * max(1, len(series)) ** 0.5 + 2.0, title, subtitle)
    ax = fig.subplots()
    y = np.arange(len(rows))[::-1].astype(float)
    half = 0.22 if len(series) <= 4 else 0.38  # many series use most of the line's height
    offsets = np.linspace(half, -half, len(series)) if len(series) > 1 else [0.0]
    for k, (key, label) in enumerate(series):
        cell = frame[frame["series"] == key].set_index("row").reindex([r for r, _ in rows])
        est = cell["estimate"].to_numpy(dtype=float)
        st = style(k)
        ax.hlines(y + offsets[k], cell["ci_low"].to_numpy(dtype=float), cell["ci_high"].to_numpy(dtype=float),
                  color=st["color"], linewidth=1.1)
        withheld = not np.isfinite(est).any()
        ax.plot(est, y + offsets[k], linestyle="none", marker=st["marker"], color=st["color"],
                markerfacecolor=st["markerfacecolor"], markeredgecolor=st["markeredgecolor"], markersize=4,
                label=f"{label}: withheld [c]" if withheld else label)
    ax.axvline(0, color="#555555", linewidth=0.8, linestyle="--")
    ax.set_yticks(y, [_wrap(label, 40) for _, label in rows], fontsize=8)
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", color="#dddddd", linewidth=0.5)
    if len(series) > 1:
        figure_legend(fig, *ax.get_legend_handles_labels(), most=3)
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
    handles, labels = ax.get_legend_handles_labels()
    ncols, labels = legend_layout(labels, fig.get_figwidth(), 7, most=3)
    ax.legend(handles, labels, ncols=ncols, fontsize=7, loc="upper center",
              bbox_to_anchor=(0.5, -0.12 - 0.3 / max(len(frame), 1)), frameon=False)
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


LINE_TOP, LINE_LEFT, LINE_RIGHT, LINE_PLOT = 10, 34, 10, 148  # the small charts' margins and plot height
LINE_TEXT = 9  # their font size, in SVG units (one unit is a point: 72 per inch)


def line_svg(series: Sequence[tuple[str, Sequence[float]]], xlabels: Sequence[str], alt: str,
             ylim: tuple[float, float], width: int = 360) -> str:
    """A small line chart as SVG text: one polyline per series with a distinct marker and dash, and a key
    with one series per line beneath the wave labels (a council's name can be long).

    Wave labels are wrapped to their share of the width (:func:`wave_ticks`, a line per ``<tspan>``),
    so the labels of many waves never overlap; the chart is as tall as its labels and key need.
    NaN values break a line. Text is XML-escaped, so labels from the data stay text.
    """
    frame, key_top = _line_svg_frame(tuple(xlabels), (ylim[0], ylim[1]), width)
    height = key_top + 14 * len(series) + 4
    plot_w, (lo, hi) = width - LINE_LEFT - LINE_RIGHT, ylim
    n = max(len(xlabels), 1)

    def px(i: int) -> float:
        return LINE_LEFT + (plot_w * (i + 0.5) / n)

    def py(v: float) -> float:
        return LINE_TOP + LINE_PLOT * (1 - (v - lo) / (hi - lo))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" aria-label={quoteattr(alt)}>',
             frame]
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
        y = key_top + 14 * k + 7
        if dash or len(points) > 1:
            dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
            parts.append(f'<line x1="{LINE_LEFT}" x2="{LINE_LEFT + 24}" y1="{y}" y2="{y}" stroke="{colour}" '
                         f'stroke-width="2"{dash_attr}/>')
        parts.append(_marker(shape, LINE_LEFT + 12, y, colour))
        parts.append(f'<text x="{LINE_LEFT + 32}" y="{y + 3}" font-size="{LINE_TEXT}">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


@functools.lru_cache(maxsize=64)
def _line_svg_frame(xlabels: tuple[str, ...], ylim: tuple[float, float], width: int) -> tuple[str, float]:
    """The plotting area, y grid and labels and wrapped x labels of :func:`line_svg`, and where its key
    starts: the same for every chart of a study, so drawn once (a national internal report has thousands)."""
    plot_w, (lo, hi) = width - LINE_LEFT - LINE_RIGHT, ylim
    n = max(len(xlabels), 1)

    def py(v: float) -> float:
        return LINE_TOP + LINE_PLOT * (1 - (v - lo) / (hi - lo))

    parts = [f'<rect x="{LINE_LEFT}" y="{LINE_TOP}" width="{plot_w}" height="{LINE_PLOT}" fill="none" stroke="#bbbbbb"/>']
    step = max(1.0, float(np.ceil((hi - lo) / 10)))  # at most about ten y labels (a 0-100 amount)
    for tick in np.arange(np.ceil(lo / step) * step, np.floor(hi) + 1e-9, step):
        parts.append(f'<text x="{LINE_LEFT - 6}" y="{py(tick) + 3:.1f}" font-size="{LINE_TEXT}" text-anchor="end">{tick:g}</text>')
        parts.append(f'<line x1="{LINE_LEFT}" x2="{LINE_LEFT + plot_w}" y1="{py(tick):.1f}" y2="{py(tick):.1f}" stroke="#eeeeee"/>')
    ticks, key = wave_ticks(xlabels, plot_w / 72, LINE_TEXT)
    base = LINE_TOP + LINE_PLOT + 12
    for i, label in enumerate(ticks):
        x = LINE_LEFT + plot_w * (i + 0.5) / n
        spans = "".join(f'<tspan x="{x:.1f}" dy="{0 if j == 0 else LINE_TEXT + 1}">{escape(line)}</tspan>'
                        for j, line in enumerate(label.split("\n")))
        parts.append(f'<text x="{x:.1f}" y="{base}" font-size="{LINE_TEXT}" text-anchor="middle">{spans}</text>')
    extent = max((t.count("\n") + 1 for t in ticks), default=1) * (LINE_TEXT + 1)
    for line in wrap_to(key, (width - LINE_LEFT) / 72, LINE_TEXT).split("\n") if key else ():
        extent += LINE_TEXT + 2
        parts.append(f'<text x="{LINE_LEFT}" y="{base + extent:.1f}" font-size="{LINE_TEXT}">{escape(line)}</text>')
    return "".join(parts), base + extent + 8


def _marker(shape: str, x: float, y: float, colour: str) -> str:
    if shape == "rect":
        return f'<rect x="{x - 3.5:.1f}" y="{y - 3.5:.1f}" width="7" height="7" fill="{colour}"/>'
    if shape == "diamond":
        return f'<polygon points="{x:.1f},{y - 4.5:.1f} {x + 4.5:.1f},{y:.1f} {x:.1f},{y + 4.5:.1f} {x - 4.5:.1f},{y:.1f}" fill="{colour}"/>'
    if shape == "triangle":
        return f'<polygon points="{x:.1f},{y - 4.5:.1f} {x + 4.5:.1f},{y + 3.5:.1f} {x - 4.5:.1f},{y + 3.5:.1f}" fill="{colour}"/>'
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}"/>'
