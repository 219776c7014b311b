"""The report stage: numbers match the model tables, free text stays text, public cells respect min_cell."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from markupsafe import escape
from PIL import Image

from impactstudy.errors import DataError
from impactstudy.pipeline.paths import StudyPaths
from impactstudy.report import figures
from impactstudy.report.disclosure import MARK
from impactstudy.report.findings import key_findings
from impactstudy.report.stage import run_report
from impactstudy.report.steps import report_steps
from impactstudy.report.tables import interval, number

from report_fixtures import HOSTILE, build_study

# counts of answers: withheld below min_cell in the public bundle (counts of councils or respondents taking
# part, and of file rows, are not disclosive: docs/report.md)
COUNT_HEADERS = {"Respondents selecting it", "Respondents answering", "Answers mentioning it", "Coded answers"}


@pytest.fixture(scope="module")
def demo40(tmp_path_factory):
    return build_study(tmp_path_factory.mktemp("r40"), 40)


@pytest.fixture(scope="module")
def demo6(tmp_path_factory):
    return build_study(tmp_path_factory.mktemp("r6"), 6)


@pytest.fixture(scope="module")
def reports6(demo6):
    """The 6-council demo's two bundles: (internal text, council pages, public text, the public result)."""
    study, paths = demo6
    results = run_report(study, paths)
    internal = (paths.bundle("internal") / "index.html").read_text(encoding="utf-8")
    pages = {p.name: p.read_text(encoding="utf-8") for p in (paths.bundle("internal") / "councils").glob("*.html")}
    return internal, pages, (paths.bundle("public") / "index.html").read_text(encoding="utf-8"), results["public"]


@pytest.fixture(scope="module")
def public40(demo40):
    study, paths = demo40
    result = run_report(study, paths)["public"]
    return result, (paths.bundle("public") / "index.html").read_text(encoding="utf-8")


class Tables(HTMLParser):
    """Every <table> as (headers, rows of cell text)."""

    def __init__(self):
        super().__init__()
        self.tables, self._cell, self._row, self._in = [], None, None, False

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append({"header": [], "rows": []})
        elif tag == "tr":
            self._row = []
        elif tag in ("th", "td"):
            self._cell = ""

    def handle_endtag(self, tag):
        if tag in ("th", "td") and self._row is not None:
            self._row.append(self._cell.strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            target = self.tables[-1]
            if not target["header"]:
                target["header"] = self._row
            else:
                target["rows"].append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def parse_tables(text: str) -> list[dict]:
    parser = Tables()
    parser.feed(text)
    return parser.tables


def test_report_has_every_section_and_is_self_contained(demo40, public40):
    result, text = public40
    for title in ("Summary", "The sample", "Aims and expectations before the review", "First reflections and early impact",
                  "What changed in the longer term", "Expectations against outcomes", "Differences by group",
                  "Lessons for the sector", "Methods and data quality", "Provenance"):
        assert f">{title}</h2>" in text
    assert re.search(r"(src|href)=\"https?:", text) is None
    assert "<link" not in text and "<script" not in text.lower()
    assert "@media print" in text
    assert text.count("<svg") == len(result["figures"]) >= 8
    caveat = demo40[0].intervention.caveat_text
    assert "Ofsted feedback and changes of leadership" in caveat
    assert html.escape(caveat, quote=False) in text or caveat in html.unescape(text)


def test_numbers_shown_match_contrasts_csv(demo40, public40):
    study, paths = demo40
    _, text = public40
    contrasts = pd.read_csv(paths.tables / "contrasts.csv")
    shown = html.unescape(text)
    lmm = contrasts[(contrasts["model"] == "lmm") & (contrasts["group"] == "all")]
    assert len(lmm) >= 12
    for row in lmm.itertuples():
        cell = f"{number(row.estimate, signed=True)} ({interval(row.ci_low, row.ci_high)})"
        assert cell in shown, cell
    forest = pd.read_csv(paths.bundle("public") / "figures" / "aim-longer_term_forest.csv")
    last = lmm[lmm["contrast"] == "follow_up - baseline"].iloc[0]
    label = study.measure(last["measure"]).label
    match = forest[(forest["Measure"] == label) & (forest["Comparison"].str.startswith("Longer-term"))]
    assert np.isclose(match["Estimate"].iloc[0], round(last["estimate"], 2))  # a number, as the page rounds it


def test_public_report_has_no_cell_below_min_cell_and_no_council_pages(demo6, reports6):
    study, paths = demo6
    _, pages, text, _ = reports6
    assert len(pages) == 7  # six councils and their index, in the internal bundle
    assert not (paths.bundle("public") / "councils").exists()  # none in the public bundle
    checked = withheld = 0
    for t in parse_tables(text):
        for j, header in enumerate(t["header"]):
            if header not in COUNT_HEADERS:
                continue
            for row in t["rows"]:
                cell = row[j].replace(",", "")
                if cell == MARK:
                    withheld += 1
                elif cell not in ("–", ""):
                    assert int(cell) >= study.min_cell, (t["header"], row)
                    checked += 1
    assert checked > 10 and withheld > 10
    for csv in (paths.bundle("public") / "figures").glob("*.csv"):
        frame = pd.read_csv(csv, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        for column in set(frame.columns) & COUNT_HEADERS:
            values = [v.replace(",", "") for v in frame[column] if v not in (MARK, "–", "")]
            assert all(int(v) >= study.min_cell for v in values), (csv.name, column)
    assert "<img" not in text and "<script" not in text  # a hostile role label on a consented quote: escaped
    if "In their own words" in text:  # public quotes only with the respondents' consent ([[coding]] consent)
        assert "Quoted with the respondents' consent" in html.unescape(text)
    assert "It rests on only 6 councils" in html.unescape(text)


def test_hostile_free_text_is_shown_as_text(reports6):
    text, pages, _, _ = reports6
    assert "In their own words" in text
    for hostile in HOSTILE:
        assert hostile not in text
        assert str(escape(hostile)) in text
    assert "<img" not in text and "<script" not in text
    joined = "".join(pages.values())
    assert "<script" not in joined and "<img" not in joined
    assert str(escape(HOSTILE[1])) in joined  # the hostile role label, escaped, on its council's page


def test_figures_saved_as_svg_png_csv_deterministically(demo6, reports6, tmp_path):
    study, paths = demo6
    result = reports6[3]
    assert len(result["figures"]) >= 8
    for name in result["figures"]:
        folder = paths.bundle("public") / "figures"
        assert (folder / f"{name}.csv").is_file()
        with Image.open(folder / f"{name}.png") as image:
            assert round(image.info["dpi"][0]) == 300
        assert b"<dc:date>" not in (folder / f"{name}.svg").read_bytes()
    frame = pd.DataFrame({"label": ["a", "b"], "value": [0.2, np.nan], "ci_low": [0.1, np.nan], "ci_high": [0.3, np.nan]})
    job = figures.Job("bars", figures.bar_chart, (frame, "T", "S", "x"), "T", "S", "alt", frame, tmp_path)
    first = figures.render(job).svg
    assert figures.render(job).svg == first
    assert 'role="img"' in first and 'aria-label="alt"' in first and 'id="bars-' in first
    assert "[c]" in first  # a withheld bar is labelled, not silently missing


def test_one_report_step_writes_both_bundles_and_the_audience_is_no_setting(demo6, tmp_path):
    study, paths = demo6
    [step] = report_steps(study, paths)
    assert "audience" not in step.config
    assert {paths.bundle("public") / "index.html", paths.bundle("internal") / "index.html"} <= set(step.outputs)
    with pytest.raises(DataError, match="impactstudy link"):
        run_report(study, StudyPaths(tmp_path, "demo"))


def test_findings_are_worded_with_care(demo6):
    study, _ = demo6
    base = {"measure": "eff_leadership", "model": "lmm", "contrast": "follow_up - baseline", "group": "all",
            "std_error": 0.1, "p_value": 0.01, "n_obs": 100, "df": 10.0, "correction": "", "warning": ""}
    clear = pd.DataFrame([{**base, "estimate": 0.5, "ci_low": 0.2, "ci_high": 0.8, "q_value": 0.01, "n_councils": 40, "flag": ""}])
    [finding] = key_findings(clear, study)
    assert "was higher at" in finding.sentence and "0.20 to 0.80" in finding.sentence and "q = 0.010" in finding.sentence
    assert "cause" not in finding.sentence and "because of" not in finding.sentence
    vague = clear.assign(ci_low=-0.1, q_value=0.3)
    [finding] = key_findings(vague, study)
    assert "no clear change" in finding.sentence and "the interval includes zero" in finding.sentence
    chance = clear.assign(q_value=0.09)
    assert "could be chance" in key_findings(chance, study)[0].sentence
    few = clear.assign(n_councils=6, flag="few councils")
    assert "only 6 councils" in key_findings(few, study)[0].sentence
    assert key_findings(clear.assign(n_councils=3), study, min_cell=5)[0].withheld
    disagree = pd.concat([clear, clear.assign(model="gee", ci_low=-0.2)])
    assert "Not every model agrees: the GEE" in key_findings(disagree, study)[0].sentence
    assert np.isclose(key_findings(clear, study)[0].estimate, 0.5)


def test_the_consent_question_is_no_finding_but_stays_in_the_codebook(demo6, reports6):
    """The demo's ``quote_consent`` is a [[coding]] consent question, so administrative: even where a model
    table has rows for it (as the synthetic tables here do, like a model stage before it was excluded),
    no key finding, table of change or "models disagree" sentence states it; the codebook lists it."""
    study, paths = demo6
    consent = study.measure("quote_consent")
    assert not consent.analyse and consent not in study.research_measures and consent in study.analysed_measures
    contrasts = pd.read_csv(paths.tables / "contrasts.csv")
    assert (contrasts["measure"] == "quote_consent").any()  # the rows are there: the report is what leaves them out
    assert "quote_consent" not in {f.measure for f in key_findings(contrasts, study)}
    for page in (reports6[0], reports6[2]):
        label = consent.label
        methods = page.index('<section id="methods"')
        assert label not in page[:methods]  # no finding, chart or table of change before the methods
        codebook = page[methods:]
        assert label in codebook and "not analysed (administrative" in codebook


def test_trajectories_match_statsmodels_t_interval_of_council_means(demo6):
    from statsmodels.stats.weightstats import DescrStatsW

    from impactstudy.report.summaries import trajectories
    study, paths = demo6
    panel = pd.read_parquet(paths.panel_long)
    out = trajectories(panel, study, ["eff_leadership"], ["status"])
    cell = panel[(panel["measure"] == "eff_leadership") & (panel["wave"] == "follow_up") & panel["value"].notna()]
    means = cell.groupby("council_code", observed=True)["value"].mean()
    row = out[(out["wave"] == "follow_up") & (out["group"] == "all")].iloc[0]
    assert row["n_councils"] == len(means) and row["n_respondents"] == cell["respondent_id"].nunique()
    assert np.isclose(row["mean"], means.mean())
    assert np.allclose([row["ci_low"], row["ci_high"]], DescrStatsW(means.to_numpy()).tconfint_mean())
    by_status = out[(out["wave"] == "follow_up") & out["group"].str.startswith("status=")]
    assert by_status["n_councils"].sum() == row["n_councils"]


def test_provenance_says_what_changed_since_the_previous_report(demo6):
    study, paths = demo6
    table = paths.tables / "contrasts.csv"
    original = table.read_bytes()
    try:
        run_report(study, paths)  # the previous report
        contrasts = pd.read_csv(table)
        contrasts.loc[contrasts.index[contrasts["model"] == "lmm"][0], "estimate"] += 0.25
        contrasts.to_csv(table, index=False)
        run_report(study, paths)
        text = html.unescape((paths.bundle("public") / "index.html").read_text(encoding="utf-8"))
        assert "1 LMM estimate(s) moved" in text
        assert "Nothing changed since the previous report" not in text
    finally:
        table.write_bytes(original)


def test_intervals_below_95_percent_are_labelled_and_not_used_for_agreement(demo6):
    from impactstudy.report.findings import NOT_95, achieved_level, agreement, ci_text

    study, _ = demo6
    warning = "requested conf.level not achievable; the CI is a 0.6 interval"
    assert achieved_level(warning) == 0.6 and achieved_level("") is None and achieved_level(None) is None
    assert ci_text(-2.0, 0.75, warning) == f"60% CI \u22122.00 to 0.75{NOT_95}"
    assert ci_text(-2.0, 0.75, "") == "\u22122.00 to 0.75"
    base = {"measure": "eff_leadership", "contrast": "follow_up - baseline", "group": "all", "estimate": 0.5,
            "ci_low": 0.2, "ci_high": 0.8, "q_value": 0.01, "n_councils": 40, "flag": "", "warning": ""}
    rows = pd.DataFrame([{**base, "model": "lmm"},
                         {**base, "model": "wilcoxon", "ci_low": -0.1, "warning": warning}])
    assert agreement(rows, rows.iloc[0]) == []  # a 60% interval does not count as a model that disagrees
    rows.loc[1, "warning"] = ""
    assert agreement(rows, rows.iloc[0]) == ["Wilcoxon signed-rank test"]


def test_a_long_title_makes_the_chart_taller_instead_of_collapsing_it(tmp_path, recwarn):
    frame = pd.DataFrame({"label": ["a"], "value": [0.4], "ci_low": [0.3], "ci_high": [0.5]})
    short = figures.bar_chart(frame, "Short title", "Short subtitle", "x")
    long = figures.bar_chart(frame, "A theme quoted at length " * 40, "subtitle " * 60, "x")
    assert long.get_size_inches()[1] > short.get_size_inches()[1]
    job = figures.Job("long", figures.bar_chart, (frame, "A theme quoted at length " * 40, "subtitle " * 60, "x"),
                      "T", "S", "alt", frame, tmp_path)
    figures.render(job)
    assert not [w for w in recwarn if "constrained_layout" in str(w.message)]


_RENDER = figures.render


def _render_but_forests(job):  # module level: the figure workers are handed it by name
    if job.name.startswith("forest"):
        raise RuntimeError("a figure could not be drawn")
    return _RENDER(job)


def _tree(folder) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_report_failing_in_its_figures_leaves_both_bundles_as_they_were(demo6, monkeypatch):
    """Charts are drawn and saved one by one (in workers): when one fails after others were saved, neither
    bundle gets a new figure, table or workbook beside its old page, and no staging folder is left."""
    study, paths = demo6
    run_report(study, paths)
    before = _tree(paths.reports)
    monkeypatch.setattr(figures, "render", _render_but_forests)
    with pytest.raises(RuntimeError, match="could not be drawn"):
        run_report(study, paths)
    assert _tree(paths.reports) == before
    assert not [p for p in paths.reports.rglob(".*") if p.name.endswith(".tmp")]
