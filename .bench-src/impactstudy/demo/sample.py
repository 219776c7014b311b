"""The demo's councils: a stratified sample of the register's councils live on the census date, with
status, review date and council random effect, plus one council that is not in the register.
"""

from __future__ import annotations

from datetime import timedelta
from importlib import resources

import numpy as np
import pandas as pd

from impactstudy.demo.model import CENSUS_DATE, MODEL, NTI, OTHER_STATUS_SHARES, REVIEW_WINDOW, EffectModel, stream


REGISTER = "councils.csv"  # in impactstudy.councils


# Always sampled, so linkage meets known variants: the first n // 3 of them (all four from 12 councils).
ALWAYS_SAMPLED = ("Bristol, City of", "Brighton and Hove", "St. Helens", "County Durham")


UNKNOWN_DFE = 999


def live_register(all_authorities: bool = False) -> pd.DataFrame:
    """Councils live on the census date, from the packaged register (City of London excluded unless
    ``all_authorities``: the national benchmark samples every authority)."""
    with resources.files("impactstudy.councils").joinpath(REGISTER).open("r", encoding="utf-8") as handle:
        table = pd.read_csv(handle, dtype=str, keep_default_na=False)
    census = CENSUS_DATE.isoformat()
    live = (table["valid_from"] <= census) & ((table["valid_to"] == "") | (table["valid_to"] >= census))
    return table[live & (all_authorities | (table["authority_type"] != "other"))].reset_index(drop=True)


def _sample(register: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """Stratified sample: systematic over councils sorted by authority type, region and a random key."""
    forced = register["name"].isin(ALWAYS_SAMPLED[: min(len(ALWAYS_SAMPLED), n // 3)])
    pool = register[~forced].assign(_key=rng.random(int((~forced).sum())))
    pool = pool.sort_values(["authority_type", "region", "_key"]).reset_index(drop=True)
    k = n - int(forced.sum())
    step = len(pool) / k
    picks = np.floor(rng.random() * step + step * np.arange(k)).astype(int)
    chosen = pd.concat([register[forced], pool.iloc[picks].drop(columns="_key")])
    return chosen.sort_values("gss_code").reset_index(drop=True)


def status_counts(n: int) -> dict[str, int]:
    """A quarter NtI (at least one), the rest by :data:`OTHER_STATUS_SHARES`, largest remainder."""
    nti = max(1, round(n / 4))
    rest = n - nti
    quotas = {s: share * rest for s, share in OTHER_STATUS_SHARES.items()}
    counts = {s: int(q) for s, q in quotas.items()}
    for s in sorted(quotas, key=lambda s: -(quotas[s] - counts[s]))[: rest - sum(counts.values())]:
        counts[s] += 1
    return {NTI: nti, **counts}


def sample_councils(n: int, seed: int, register: pd.DataFrame, model: EffectModel = MODEL) -> pd.DataFrame:
    """Sampled councils with status, review date and council random effect, plus the unknown council."""
    sample = _sample(register, n, stream(seed, "sample"))
    rng = stream(seed, "councils")
    counts = status_counts(n)
    statuses = np.repeat(list(counts), list(counts.values()))
    span = (REVIEW_WINDOW[1] - REVIEW_WINDOW[0]).days
    sample["status"] = rng.permutation(statuses)
    sample["review_date"] = [REVIEW_WINDOW[0] + timedelta(days=int(d)) for d in rng.integers(0, span + 1, n)]
    sample["dfe"] = sample["dfe_la_code"].astype(float)
    sample["in_register"] = True
    unknown = {"gss_code": "", "name": "Unknown council", "authority_type": "", "region": "",
               "dfe_la_code": str(UNKNOWN_DFE), "status": "Adequate", "review_date": sample["review_date"].iloc[0],
               "dfe": float(UNKNOWN_DFE), "in_register": False}
    table = pd.concat([sample, pd.DataFrame([unknown])], ignore_index=True)
    table["council_re"] = rng.normal(0.0, model.council_sd, len(table))
    return table[["gss_code", "name", "authority_type", "region", "dfe", "status", "review_date",
                  "in_register", "council_re"]]
