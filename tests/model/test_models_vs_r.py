"""The model stage's tables on the demo panel agree with R.

``tests/reference/fixtures/demo_panel.csv`` is the 40-council demo's linked panel for two Likert
measures (``eff_leadership``, ``eff_voice``) and one binary item (``improvement_plan``);
``tests/reference/demo_panel_reference.R`` fitted lme4/lmerTest, geepack, ordinal + sandwich,
``t.test``, ``wilcox.test`` and ``binom.test`` to it (``fixtures/demo_panel_reference.json``). Here
the pipeline's own entry point, :func:`impactstudy.model.fitting.fit_all`, fits the same rows with the demo's
config, and every ``contrasts.csv`` row R has is compared.

Tolerances (relative unless said): LMM contrasts, fixed effects and SEs 1e-4, variance components 1e-3;
GEE 1e-4; ordinal 1e-6; paired t and McNemar 1e-6; Wilcoxon (ties: exact conditional) against coin
to 1e-9. Scaling conventions: the demo
panel has 40 councils, at least ``[models] few_councils`` (20), so GEE uses geepack's plain ``san.se``
sandwich with a normal reference for the overall rows; a status row rests on its own status's councils
(2-15 here), fewer than 40, so it gets the bias-reduced (Mancl-DeRouen) GEE: R's plain status rows are
compared on their estimates (the correction is checked in test_models_stats.py). The ordinal rows are R's
weighted ``clm`` per contrast and level (``tests/reference/ordinal_contrast.R``), compared in full.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from impactstudy import demo, stages
from impactstudy.model import fitting

FIXTURES = Path(__file__).parents[1] / "reference" / "fixtures"
KEY = ["measure", "model", "contrast", "group"]
# (model, relative tolerance of estimate, std_error, ci_low, ci_high, p_value, df)
SMALL_SAMPLE_LEVELS = ("gee",)  # models whose status rows use a small-sample correction R's rows do not have
TOLERANCE = {"lmm": 1e-4, "gee": 1e-4, "ordinal": 1e-6, "paired_t": 1e-6, "mcnemar": 1e-6}


@pytest.fixture(scope="module")
def reference() -> dict:
    return json.loads((FIXTURES / "demo_panel_reference.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """``fit_all`` on the CSV panel, with the demo study's config (written by ``demo.generate``)."""
    root = tmp_path_factory.mktemp("demo_config")
    demo.generate(root, "demo", councils=40)
    study, _ = stages.open_study("demo", root)
    panel = pd.read_csv(FIXTURES / "demo_panel.csv", dtype={"value": float})
    return fitting.fit_all(study, panel)


@pytest.fixture(scope="module")
def paired(reference: dict, fitted: dict) -> pd.DataFrame:
    """R's rows (suffix ``_r``) next to the pipeline's (``_py``)."""
    ref = pd.DataFrame(reference["rows"])
    return ref.merge(fitted["contrasts"], on=KEY, how="left", suffixes=("_r", "_py"), indicator=True)


def _close(got: float, want: float, rel: float, abs_: float = 1e-12) -> bool:
    if want is None or (isinstance(want, float) and math.isnan(want)):
        return got is None or math.isnan(got)
    return got == pytest.approx(want, rel=rel, abs=abs_)


def _mismatches(rows: pd.DataFrame, columns: list[str], rel: float, abs_: float = 1e-12) -> list[str]:
    """Cells outside tolerance. A CI bound can sit near 0 whatever its precision, so it is compared
    relative to the interval's scale (its distance from the estimate), not to its own value."""
    bad = []
    for _, row in rows.iterrows():
        for column in columns:
            got, want = float(row[f"{column}_py"]), row[f"{column}_r"]
            want = float("nan") if want is None else float(want)
            scale = abs(want - float(row["estimate_r"])) if column.startswith("ci_") else 0.0
            if not _close(got, want, rel, max(abs_, rel * scale)):
                bad.append(f"{row['measure']} {row['contrast']} {row['group']} {column}: {got!r} vs R {want!r}")
    return bad


def test_the_pipeline_has_every_row_r_has_on_the_same_data(paired: pd.DataFrame):
    assert (paired["_merge"] == "both").all(), paired.loc[paired["_merge"] != "both", KEY]
    assert set(paired["model"]) == {"lmm", "gee", "ordinal", "paired_t", "wilcoxon", "mcnemar"}
    assert len(paired) == 160
    assert (paired["n_councils_py"] == paired["n_councils_r"]).all()
    counted = paired[paired["n_obs_r"].notna()]
    assert (counted["n_obs_py"] == counted["n_obs_r"]).all()


@pytest.mark.parametrize("model", sorted(TOLERANCE))
def test_contrasts_agree_with_r(paired: pd.DataFrame, model: str):
    rows = paired[paired["model"] == model]
    columns = ["estimate", "ci_low", "ci_high", "p_value"] + (["std_error"] if model != "mcnemar" else [])
    columns += ["df"] if model in ("lmm", "paired_t", "ordinal") else []
    assert len(rows) >= 5
    if model in SMALL_SAMPLE_LEVELS:  # R's status rows are the plain sandwich: compare their estimates only
        by_level = rows["group"] != "all"
        assert _mismatches(rows[by_level], ["estimate"], TOLERANCE[model]) == []
        rows = rows[~by_level]
    assert _mismatches(rows, columns, TOLERANCE[model]) == []


def test_large_sample_conventions_are_the_ones_r_was_asked_for(paired: pd.DataFrame, fitted: dict):
    """40 councils: sandwich GEE with a normal reference overall; a status row rests on its status's 2-15
    councils, so it gets the small-sample correction (t reference). The ordinal rows rest on the councils at
    both waves (31-38 overall), so every one has a t reference on G - 1 df, as R's rows (compared above)."""
    ordinal = paired[(paired["model"] == "ordinal") & paired["std_error_py"].notna()]
    assert len(ordinal) and ordinal["correction"].str.contains("t reference").all()
    assert (ordinal["df_py"] == ordinal["n_councils_py"] - 1).all() and (ordinal["n_councils_py"] < 40).all()
    for model in SMALL_SAMPLE_LEVELS:
        rows = paired[paired["model"] == model]
        overall = rows["group"] == "all"
        assert rows.loc[overall, "df_py"].isna().all()
        assert not rows.loc[overall, "correction"].str.contains("bias-reduced|t reference").any()
        estimated = rows[~overall & rows["std_error_py"].notna()]
        assert len(estimated) and estimated["correction"].str.contains("t reference").all()
        assert (estimated["df_py"] < estimated["n_councils_py"]).all()
    assert (paired.loc[paired["model"] == "lmm", "correction"] == fitting.KENWARD_ROGER).all()  # the default lmm_df


def test_lmm_fixed_effects_and_variance_components_agree_with_lme4(reference: dict, fitted: dict):
    estimates = fitted["estimates"]
    records = {(r["measure"], r["group_by"]): r for r in fitted["records"] if r["model"] == "lmm"}
    for fit in reference["lmm_fits"]:
        ours = estimates[(estimates["measure"] == fit["measure"]) & (estimates["model"] == "lmm")
                         & (estimates["group_by"] == fit["group_by"])]
        assert len(ours) == len(fit["terms"])  # same columns, in R's order
        np.testing.assert_allclose(ours["estimate"], fit["beta"], rtol=1e-4)
        np.testing.assert_allclose(ours["std_error"], fit["se"], rtol=1e-4)
        np.testing.assert_allclose(ours["df"], fit["df"], rtol=1e-4)
        record = records[(fit["measure"], fit["group_by"])]
        assert record["n_obs"] == fit["n_obs"]
        assert record["formula"] == fit["formula"]
        for part in ("var_council", "var_council_wave", "var_respondent", "var_residual"):
            assert record[part] == pytest.approx(fit[part], rel=1e-3), part
        assert record["reml_criterion"] == pytest.approx(fit["reml_criterion"], rel=1e-6)


def test_wilcoxon_agrees_with_r_exact_conditional_with_ties(fitted: dict):
    """Council means of 1-5 answers tie everywhere: the pipeline uses the exact conditional distribution
    given the tied ranks; R's reference is coin's ``wilcoxsign_test(distribution = "exact")`` and the
    interval inverting it (tests/reference/permutation_reference.R, which ranks ``signif(x, 12)`` as
    impactstudy does: council means 2/3 apart in exact arithmetic tie, though floating point splits them)."""
    ref = pd.DataFrame(json.loads((FIXTURES / "permutation_reference.json").read_text())["demo_panel"])
    rows = ref.merge(fitted["contrasts"][fitted["contrasts"]["model"] == "wilcoxon"],
                     on=["measure", "contrast", "group"], how="left", suffixes=("_r", "_py"))
    assert len(rows) == len(ref) >= 18
    assert (rows["n_councils"] == rows["n"]).all()
    assert rows["correction"].str.startswith("exact conditional").all()
    np.testing.assert_allclose(rows["p_value"], rows["p"], rtol=1e-9)
    np.testing.assert_allclose(rows["estimate_py"], rows["estimate_r"], rtol=1e-12)
    ci = np.array([[np.nan if v is None else v for v in c] for c in rows["ci"]], dtype=float)
    np.testing.assert_allclose(rows[["ci_low", "ci_high"]].to_numpy(float), ci, rtol=1e-9)
