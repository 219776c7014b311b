"""Charts fit for a page and for Word: nothing clipped, one title, subtitles that say what is drawn,
council pages with numeric answers and readable wave labels (#17 item 6).

Every chart the report makes is checked, whoever adds it: ``render_report`` returns each chart's layout
problems (text or legends beyond the canvas, over the title block, overlapping tick labels), found on the
very drawing its PNG is made from; here they must be none for the demo and for a generated study of
another shape (six waves with long labels, an 11-point scale, amounts, options, groups).
"""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from impactstudy import stages
from impactstudy.report import figures
from impactstudy.report.council_pages import council_facts, council_page
from impactstudy.report.inputs import read_inputs
from impactstudy.report.stage import render_report
from impactstudy.study.config import load_study

from report_fixtures import build_study, write_model_outputs

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fuzz"))
from studygen import Spec, write_study  # noqa: E402

LONG_WAVE = "Round {k}: the survey of everyone taking part, wave {k} of six"
SIX_WAVES = Spec(seed=11, start_year=2017, formats=("csv", "sav", "xlsx", "dta", "csv", "sav"),
                 id_styles=("name", "gss", "dfe", "name", "gss", "dfe"), n_councils=9, reorganised=False,
                 councils_file=True, absent=0.0, blank=0.0, respondent_ids=True, roles=True, scales=(11, 4),
                 text_labels=False, missing_code=-9, reverse=False, multi=4, numeric=True, binary=True)


def _rendered(study, paths, out: Path) -> dict[str, dict]:
    inputs = read_inputs(paths)
    return {a: render_report(study, inputs, a, out / a, workers=1) for a in ("public", "internal")}


@pytest.fixture(scope="module")
def demo_charts(tmp_path_factory):
    study, paths = build_study(tmp_path_factory.mktemp("charts40"), 40)
    return study, paths, _rendered(study, paths, paths.reports)


@pytest.fixture(scope="module")
def six_waves(tmp_path_factory):
    root = tmp_path_factory.mktemp("charts6w")
    write_study(root, "gen", SIX_WAVES)
    config = root / "pipelines" / "gen" / "study.toml"
    config.write_text(re.sub(r'label = "Round (\d)"', lambda m: f'label = "{LONG_WAVE.format(k=m[1])}"',
                             config.read_text(encoding="utf-8")), encoding="utf-8")
    stages.run("gen", ["link"], root=root)
    study, paths = stages.open_study("gen", root)
    write_model_outputs(root, study)
    return study, paths, _rendered(study, paths, paths.reports)


@pytest.mark.parametrize("which", ["demo_charts", "six_waves"])
def test_no_chart_has_text_or_legend_off_the_canvas_or_over_its_title(which, request):
    study, paths, results = request.getfixturevalue(which)
    for audience, result in results.items():
        assert len(result["figures"]) >= 8, result["figures"]
        assert result["layout_problems"] == {}, (audience, result["layout_problems"])


def test_the_check_finds_a_clipped_legend_and_overlapping_labels(tmp_path):
    fig = figures.new_figure(4.0, 3.0, "A title", "A subtitle")
    fig.set_layout_engine(None)  # as a chart laid out by hand would be
    ax = fig.add_axes((0.1, 0.15, 0.8, 0.6))
    ax.plot([0, 1], [0, 1], label="a series with a long name")
    ax.legend(loc="upper left", bbox_to_anchor=(0.9, 1.0))  # beyond the right edge
    ax.set_xticks([0, 0.01], ["overlapping label", "another label"])
    fig.text(0.5, 0.9, "drawn into the title block")
    problems = " | ".join(figures.draw_png(fig).problems)
    assert "legend" in problems and "beyond the canvas" in problems
    assert "tick labels" in problems and "overlap" in problems
    assert "reaches into the title block" in problems


def test_a_forest_of_twelve_series_tells_every_series_apart(tmp_path):
    """Colours and line styles cycle every eight series; the marker (shape and fill) must not, or series 1
    and 9 look the same in the legend and on the plot (#17)."""
    import numpy as np
    from matplotlib.lines import Line2D

    series = [(f"g{k}", f"Region {k + 1}") for k in range(12)]
    rows = [(f"m{j}", f"Measure {j + 1}") for j in range(3)]
    rng = np.random.default_rng(7)
    frame = pd.DataFrame([{"row": r, "series": g, "estimate": e, "ci_low": e - 0.2, "ci_high": e + 0.2}
                          for r, _ in rows for g, _ in series for e in [float(rng.normal(0, 0.3))]])
    fig = figures.forest_chart(frame, rows, series, "Twelve groups", "Change by group", "Change")
    drawn = figures.draw_png(fig)
    assert drawn.problems == ()
    (tmp_path / "forest12.png").write_bytes(drawn.png)
    looks = [(line.get_marker(), str(line.get_markerfacecolor()) == "white")
             for line in fig.axes[0].get_lines() if isinstance(line, Line2D) and line.get_label() in dict(series).values()]
    assert len(looks) == 12 and len(set(looks)) == 12, looks
    keys = [(figures.style(k)["marker"], figures.style(k)["markerfacecolor"] == "white") for k in range(figures.DISTINCT_SERIES)]
    assert len(set(keys)) == figures.DISTINCT_SERIES


def test_the_title_is_shown_once_in_the_page_and_in_word_and_kept_in_the_exported_files(demo_charts):
    import docx

    _, paths, _ = demo_charts
    bundle = paths.reports / "internal"
    name = "aim-longer_term_forest"
    exported = (bundle / "figures" / f"{name}.svg").read_text(encoding="utf-8")
    title = re.search(r'<g id="chart-title">\s*<text[^>]*>([^<]+)</text>', exported)[1]
    html = (bundle / "index.html").read_text(encoding="utf-8")
    svg = html[html.index(f'id="fig-{name}"'):]
    svg = svg[svg.index("<svg"):svg.index("</svg>")]
    drawn = " ".join(re.findall(r"<text[^>]*>([^<]*)</text>", svg))
    assert "exclude zero" not in drawn and "chart-subtitle" not in svg  # the figcaption carries them
    assert "exclude zero" in title and "Effectiveness" in drawn
    assert html.count(f'<span class="chart-title">{title}</span>') == 1
    box = [float(v) for v in re.search(r'viewBox="([^"]+)"', svg)[1].split()]
    assert box[1] > 10  # the view starts below the cut title block
    document = docx.Document(bundle / "report.docx")
    pictures = {p.target_part.partname: Image.open(io.BytesIO(p.target_part.blob))
                for p in document.part.rels.values() if "image" in p.reltype}
    exported = [Image.open(f) for f in sorted((bundle / "figures").glob("*.png"))]
    assert len(pictures) == len(exported)
    for picture in pictures.values():  # each picture is the lower part of one exported PNG, pixel for pixel
        same = [e for e in exported if e.width == picture.width and e.height - picture.height > 100
                and e.crop((0, e.height - picture.height, e.width, e.height)).tobytes() == picture.tobytes()]
        assert same, picture.size
    captions = [p.text for p in document.paragraphs if p.style.name == "Caption"]
    assert captions.count(title) == 1


def test_forest_subtitle_says_which_waves_are_compared(tmp_path):
    from impactstudy.report.sections.aim import _compared

    class Ctx:
        class study:
            wave_ids = ("a", "b", "c")
        wave_labels = {"a": "Before", "b": "Soon after", "c": "A year on"}

    assert _compared(Ctx, ["b - a", "c - a"]) == "from the first wave"
    assert _compared(Ctx, ["c - b"]) == "from Soon after to A year on"
    assert _compared(Ctx, ["b - a", "c - a", "c - b"]) == "between the waves each series names"


def test_forest_of_previous_wave_contrasts_does_not_say_first_wave(six_waves):
    study, paths, _ = six_waves
    contrasts = pd.read_csv(paths.tables / "contrasts.csv")
    later = contrasts[(contrasts["contrast"] == "round2 - round1")].assign(contrast="round3 - round2")
    contrasts = pd.concat([contrasts, later], ignore_index=True)
    contrasts.to_csv(paths.tables / "contrasts.csv", index=False)
    html = _rendered(study, paths, paths.reports / "again")["internal"]
    text = (paths.reports / "again" / "internal" / "index.html").read_text(encoding="utf-8")
    caption = re.search(r'id="fig-aim-main_forest".*?chart-subtitle">([^<]+)<', text, re.S)[1]
    assert "first wave" not in caption and "between the waves each series names" in caption
    assert html["layout_problems"] == {}


def test_wave_labels_wrap_or_are_numbered_with_a_key():
    short, key = figures.wave_ticks(["Before", "Soon after", "A year on"], 2.2, 7)
    assert key == "" and short[1] in ("Soon after", "Soon\nafter")
    long = [LONG_WAVE.format(k=k) for k in range(1, 7)]
    ticks, key = figures.wave_ticks(long, 2.2, 7)
    assert ticks == ["1", "2", "3", "4", "5", "6"]
    assert key.startswith("Waves: 1 = Round 1: the survey") and "6 = Round 6" in key


def test_wrapped_text_fits_its_width():
    text = "“A theme quoted at length, with WIDE CAPITALS and a Supercalifragilisticexpialidocious word” " * 3
    for size, bold in ((10, True), (8, False)):
        lines = figures.wrap_to(text, 3.0, size, bold).split("\n")
        assert len(lines) > 3 and all(figures.text_width(line, size, bold) <= 3.0 for line in lines)
    ncols, labels = figures.legend_layout(["short", "a much longer series label " * 3, "third"], 7.0)
    assert 1 <= ncols <= 3 and all(figures.text_width(x, 8) < 7.0 for label in labels for x in label.split("\n"))


def _svg_texts(svg: str, anchor: str = "") -> list[tuple[float, float, str]]:
    """(x, y, text) of each line of an SVG built by line_svg (text and tspan positions), optionally only
    of the texts with that ``text-anchor``."""
    out = []
    for m in re.finditer(r'<text x="([\d.]+)" y="([\d.]+)"([^>]*)>(.*?)</text>', svg):
        x, y, inner = float(m[1]), float(m[2]), m[4]
        if anchor and f'text-anchor="{anchor}"' not in m[3]:
            continue
        spans = re.findall(r'<tspan x="[\d.]+" dy="([\d.]+)">([^<]*)</tspan>', inner)
        for dy, line in spans:
            y += float(dy)
            out.append((x, y, line))
        if not spans:
            out.append((x, y, inner))
    return out


def test_council_pages_show_numeric_answers_and_wave_labels_that_do_not_overlap(six_waves):
    study, paths, _ = six_waves
    inputs = read_inputs(paths)
    facts = council_facts(study, inputs)
    amount = study.measure("amount")
    panel = inputs.panel
    given = panel[(panel["measure"] == "amount") & panel["value"].notna()]
    page = council_page(study, facts[0], [amount], {})
    shown = [cell for t in page["responses"] for row in t.rows if row[0] == amount.label for cell in row[1:]]
    mine = given[given["council_code"] == facts[0].code]
    assert shown and any(c.replace(",", "").replace(".", "").isdigit() for c in shown)
    assert {f"{v:,.10g}" for v in mine["value"]} <= set(shown)
    svg = str(page["charts"][0]["svg"])
    lines = _svg_texts(svg)
    ticks = [(x, y, t) for x, y, t in lines if t.isdigit() and y > figures.LINE_TOP + figures.LINE_PLOT and x > figures.LINE_LEFT]
    assert [t for _, _, t in ticks][:6] == ["1", "2", "3", "4", "5", "6"]  # six long labels: numbered, with a key
    assert any(t.startswith("Waves: 1 = Round 1") for _, _, t in lines)
    width = float(re.search(r'viewBox="0 0 (\d+) (\d+)"', svg)[1])
    height = float(re.search(r'viewBox="0 0 (\d+) (\d+)"', svg)[2])
    for x, y, text in lines:
        assert y <= height, text
        assert figures.text_width(text, figures.LINE_TEXT) * 72 <= width, text


def test_council_page_wave_labels_of_the_demo_wrap_without_overlapping(demo_charts):
    study, paths, _ = demo_charts
    labels = [w.label for w in study.waves]
    svg = figures.line_svg([("A council", [1, 2, 3]), ("All councils", [2, 2, 2])], labels, "alt", (1, 5))
    ticks = [(x, y, t) for x, y, t in _svg_texts(svg, "middle") if y > figures.LINE_TOP + figures.LINE_PLOT]
    by_x = {}
    for x, _, text in ticks:
        by_x.setdefault(x, []).append(text)
    xs = sorted(by_x)
    assert len(xs) >= len(labels)
    for left, right in zip(xs, xs[1:]):  # each label's widest line fits between its neighbours' centres
        half = lambda x: max(figures.text_width(t, figures.LINE_TEXT) * 72 for t in by_x[x]) / 2  # noqa: E731
        assert half(left) + half(right) <= right - left, (by_x[left], by_x[right])


def test_the_report_stage_shows_its_progress_as_plain_lines_in_a_log(six_waves, tmp_path):
    from impactstudy.pipeline import progress

    study, paths, _ = six_waves
    stream = io.StringIO()
    progress.enable(stream)
    try:
        render_report(study, read_inputs(paths), "internal", tmp_path / "bundle", workers=2)
    finally:
        progress.disable()
    lines = [line for line in stream.getvalue().splitlines() if line.startswith("report internal: ")]
    assert lines and "charts and pages done in" in lines[-1] and "\r" not in stream.getvalue()
    assert int(lines[-1].split(": ")[1].split()[0]) >= 13 + 1  # every chart, the workbook, the council pages
