"""Theme frequencies and their changes (impactstudy.model.themes) on generated coded answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from impactstudy.model import themes
from impactstudy.model.stats import shares

WAVES = ["w1", "w2", "w3"]


def _answers(councils: int, per_council: int, seed: int, p: dict[str, float], uncoded: float = 0.1) -> pd.DataFrame:
    """One theme's 0/1 panel rows: councils x respondents x waves, roles, a council covariate; some answers uncoded."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(councils):
        shift = rng.normal(0, 0.08)  # councils differ: answers within one are alike
        for r in range(per_council):
            role = ("Lead", "Frontline")[r % 2]
            for w in WAVES:
                share = np.clip(p[w] + shift, 0.01, 0.99)
                value = float(rng.random() < share) if rng.random() > uncoded else np.nan
                rows.append({"council_code": f"E{c:08d}", "respondent_id": f"r{c}-{r}", "wave": w, "value": value,
                             "role": role, "status": "Good" if c % 3 else "Adequate", "measure": "theme_x"})
    return pd.DataFrame(rows)


def _cr1_se(cell: pd.DataFrame, councils: int, n_all: int, k_cells: int) -> float:
    """The CR1 standard error of one cell's share in ``y ~ 0 + cell``, written out:
    G/(G-1) (N-1)/(N-K) sum_g (sum of the council's residuals in the cell)^2 / n_cell^2."""
    y = cell["value"].to_numpy(float)
    resid = pd.Series(y - y.mean()).groupby(cell["council_code"].to_numpy()).sum().to_numpy()
    factor = councils / (councils - 1) * (n_all - 1) / (n_all - k_cells)
    return float(np.sqrt(factor * np.sum(resid ** 2) / len(y) ** 2))


def test_frequencies_are_shares_of_coded_answers_with_clustered_intervals():
    data = _answers(30, 6, 1, {"w1": 0.2, "w2": 0.4, "w3": 0.5})
    freq, change = themes.theme_rows(data, WAVES, [None, "role", "status"], few_councils=20)
    coded = data[data["value"].notna()]
    for w in WAVES:
        row = freq[(freq["wave"] == w) & (freq["group"] == "all")].iloc[0]
        cell = coded[coded["wave"] == w]
        assert row["n_obs"] == len(cell) < 180  # uncoded answers are not in the base
        assert row["n_selected"] == int(cell["value"].sum())
        assert np.isclose(row["estimate"], cell["value"].mean())
        # the fit has one cell per wave (K = 3) over every coded answer (N)
        assert np.isclose(row["std_error"], _cr1_se(cell, 30, len(coded), 3), rtol=1e-10)
        assert row["n_councils"] == 30 and row["correction"] == shares.CLUSTER_NORMAL
    assert set(freq["group"]) == {"all", "role=Frontline", "role=Lead", "status=Adequate", "status=Good"}
    lead = freq[(freq["wave"] == "w1") & (freq["group"] == "role=Lead")].iloc[0]
    assert np.isclose(lead["estimate"], coded[(coded["wave"] == "w1") & (coded["role"] == "Lead")]["value"].mean())
    # every contrast of the recurring question; 30 councils: no council-level rows
    assert set(change["model"]) == {"theme_share"}
    last = change[(change["contrast"] == "w3 - w1") & (change["group"] == "all")].iloc[0]
    by_wave = freq[freq["group"] == "all"].set_index("wave")["estimate"]
    assert np.isclose(last["estimate"], by_wave["w3"] - by_wave["w1"])
    assert last["ci_low"] > 0  # a rise from 20% to 50% over 30 councils is clear


def test_few_councils_get_t_reference_and_the_sign_flip_test():
    data = _answers(6, 5, 2, {"w1": 0.3, "w2": 0.3, "w3": 0.6})
    freq, change = themes.theme_rows(data, WAVES, [None], few_councils=20)
    assert (freq["df"] == 5).all() and (freq["correction"] == shares.CLUSTER_T).all()
    flip = change[change["model"] == "sign_flip"]
    assert len(flip) == 3 and (flip["min_p_value"] >= 2 / 2 ** 6 - 1e-12).all()
    council_change = (data[data["wave"] == "w3"].groupby("council_code")["value"].mean()
                      - data[data["wave"] == "w1"].groupby("council_code")["value"].mean())
    assert np.isclose(flip[flip["contrast"] == "w3 - w1"]["estimate"].iloc[0], council_change.mean())


def test_a_theme_nobody_mentions_has_no_interval_and_says_why():
    data = _answers(10, 4, 3, {"w1": 0.0, "w2": 0.0, "w3": 0.0})
    data["value"] = data["value"] * 0
    freq, _ = themes.theme_rows(data, WAVES, [None], few_councils=20)
    assert (freq["estimate"] == 0).all() and freq["ci_low"].isna().all()
    assert (freq["warning"] == themes.NO_VARIATION).all()


def test_a_question_asked_once_has_no_change_rows():
    data = _answers(10, 4, 4, {"w1": 0.3, "w2": 0.3, "w3": 0.3})
    data.loc[data["wave"] != "w2", "value"] = np.nan
    freq, change = themes.theme_rows(data, WAVES, [None, "role"], few_councils=5)
    assert set(freq["wave"]) == {"w2"} and change.empty


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 12), st.integers(1, 6), st.integers(0, 10_000),
       st.floats(0, 1), st.floats(0, 1), st.floats(0, 0.9))
def test_any_study_shape_gives_sane_rows(councils, per_council, seed, p1, p3, uncoded):
    data = _answers(councils, per_council, seed, {"w1": p1, "w2": 0.5, "w3": p3}, uncoded)
    freq, change = themes.theme_rows(data, WAVES, [None, "role", "status"], few_councils=20)
    assert ((freq["estimate"].dropna() >= 0) & (freq["estimate"].dropna() <= 1)).all()
    ok = freq["ci_low"].notna()
    assert (freq.loc[ok, "ci_low"] <= freq.loc[ok, "estimate"] + 1e-12).all()
    assert (freq.loc[ok, "ci_high"] >= freq.loc[ok, "estimate"] - 1e-12).all()
    assert (freq["n_selected"] <= freq["n_obs"]).all()
    assert change.empty or change["estimate"].dropna().abs().max() <= 1 + 1e-12


def test_the_consent_question_is_not_modelled():
    """A [[coding]] consent measure is administrative: observed in every wave, it gets no model (so no row
    of contrasts.csv, no q-value share with the research measures), while a research measure does."""
    from pathlib import Path

    from impactstudy.model import fitting
    from impactstudy.study.config import load_study

    study = load_study(Path(__file__).parents[2] / "pipelines" / "demo" / "study.toml", "demo")
    rows = [{"council_code": f"E{c}", "respondent_id": f"r{c}", "wave": w, "measure": m, "value": float((c + k) % 2)}
            for c in range(8) for k, w in enumerate(("baseline", "follow_up")) for m in ("quote_consent", "improvement_plan")]
    assert [m.name for m in fitting.modelled_measures(study, pd.DataFrame(rows))] == ["improvement_plan"]
