"""Whole studies, generated: the config, every wave's raw file and the councils file, from a :class:`Spec`.

The fuzzer (``test_fuzz_study.py``) draws a :class:`Spec` with hypothesis (:func:`specs`) and writes it
with :func:`write_study`; the raw data follow from ``Spec.seed`` with numpy, so a failing example is
reproduced from the spec hypothesis prints. Nothing here is about the demo's programme: the study,
its waves, measures and labels are neutral ("Round 2", "Level 3"), so any demo wording in a report is
a leak from code.

What varies: 2–6 waves, one a year (their dates chosen to straddle the register's reorganisations when
``reorganised``); each wave's format (.sav, .dta, .csv, .xlsx) and how it names councils (GSS code,
DfE code, a name variant); 1–60 councils, some absent from the councils file, some with blank
covariates; likert scales of 3–11 points, written as codes or as their labels, with a negative or
positive missing code, reversed in some waves; a multiple-response set, a numeric and a binary
measure; respondent ids and roles or neither.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat
from hypothesis import strategies as st

from impactstudy.councils import councils_on, load_register

FORMATS = ("sav", "dta", "csv", "xlsx")
ID_STYLES = ("gss", "dfe", "name")
# councils the register reorganises: a code change (2013), a merger (2019), splits (2021, 2023)
REORGANISED = ("E06000048", "E08000020", "E06000028", "E06000029", "E10000021", "E10000006", "E10000002")
# the words of the demo's programme: none may appear in a generated study's report
DEMO_WORDS = ("peer review", "ofsted", "safeguarding", "effectiveness", "a year on", "before the review",
              "the review", "leadership", "children")


@dataclass(frozen=True)
class Spec:
    """One generated study (see the module docstring); hypothesis shrinks it towards the simplest study."""

    seed: int
    start_year: int
    formats: tuple[str, ...]  # one per wave
    id_styles: tuple[str, ...]  # one per wave
    n_councils: int
    reorganised: bool
    councils_file: bool
    absent: float  # share of councils left out of the councils file
    blank: float  # share of covariate cells left blank
    respondent_ids: bool
    roles: bool
    scales: tuple[int, ...]  # points of each likert measure
    text_labels: bool  # CSV/Excel waves write likert answers as their labels
    missing_code: int
    reverse: bool
    multi: int  # options of the multiple-response set (0: none)
    numeric: bool
    binary: bool
    keys_at_end: bool = False  # the councils file names councils as at the last round, not the first
    successor: bool = False  # [councils] mergers = "successor"

    @property
    def waves(self) -> int:
        return len(self.formats)


@st.composite
def specs(draw: st.DrawFn, max_councils: int = 60) -> Spec:
    """A :class:`Spec` (hypothesis strategy)."""
    waves = draw(st.integers(2, 6))
    return Spec(
        seed=draw(st.integers(0, 2**31 - 1)),
        start_year=draw(st.sampled_from((2012, 2017, 2018, 2020, 2021, 2022))),
        formats=tuple(draw(st.lists(st.sampled_from(FORMATS), min_size=waves, max_size=waves))),
        id_styles=tuple(draw(st.lists(st.sampled_from(ID_STYLES), min_size=waves, max_size=waves))),
        n_councils=draw(st.integers(1, max_councils)),
        reorganised=draw(st.booleans()),
        councils_file=draw(st.booleans()),
        absent=draw(st.sampled_from((0.0, 0.1, 0.5))),
        blank=draw(st.sampled_from((0.0, 0.1, 0.5))),
        respondent_ids=draw(st.booleans()),
        roles=draw(st.booleans()),
        scales=tuple(draw(st.lists(st.integers(3, 11), min_size=1, max_size=3))),
        text_labels=draw(st.booleans()),
        missing_code=draw(st.sampled_from((-9, -1, 9, 99))),
        reverse=draw(st.booleans()),
        multi=draw(st.sampled_from((0, 2, 4))),
        numeric=draw(st.booleans()),
        binary=draw(st.booleans()),
        keys_at_end=draw(st.booleans()),
        successor=draw(st.booleans()),
    )


def wave_dates(spec: Spec) -> list[tuple[date, date]]:
    """Fieldwork windows: January to June of consecutive years."""
    return [(date(spec.start_year + k, 1, 1), date(spec.start_year + k, 6, 30)) for k in range(spec.waves)]


def _identity(code: str, on: date, register: pd.DataFrame) -> str:
    """The code a council answering on ``on`` has: its own, or its (first) successor's once it ended."""
    while True:
        row = register.loc[code]
        if pd.isna(row["valid_to"]) or pd.Timestamp(on) <= row["valid_to"] or not isinstance(row["successor_codes"], str):
            return code
        code = row["successor_codes"].split(";")[0]


def _name_variant(name: str, rng: np.random.Generator) -> str:
    variants = [name, name.upper(), name.lower(), f"  {name} ", name.replace(" and ", " & ")]
    if ", City of" in name:
        variants.append("City of " + name.replace(", City of", ""))
    if ", County of" in name:
        variants.append(name.replace(", County of", ""))
    return variants[int(rng.integers(len(variants)))]


def _councils(spec: Spec, rng: np.random.Generator) -> list[str]:
    first = wave_dates(spec)[0][1]
    live = councils_on(first)["gss_code"].tolist()
    chosen = [str(c) for c in rng.choice(live, size=min(spec.n_councils, len(live)), replace=False)]
    if spec.reorganised:
        extra = [c for c in REORGANISED if c in live and c not in chosen][:3]
        chosen = extra + chosen[: max(spec.n_councils - len(extra), 0)]
    return chosen


def _likert_labels(points: int) -> list[str]:
    return [f"Level {i}" for i in range(1, points + 1)]


def _config(spec: Spec, files: list[str], councils_cols: bool) -> str:
    dates = wave_dates(spec)
    waves = []
    for k, (fmt, (start, end)) in enumerate(zip(spec.formats, dates)):
        lines = [f'id = "round{k + 1}"', f'label = "Round {k + 1}"', f'file = "{files[k]}"',
                 f"fieldwork_start = {start.isoformat()}", f"fieldwork_end = {end.isoformat()}", 'council = "area"']
        if spec.respondent_ids:
            lines.append('respondent = "person"')
        if spec.roles:
            lines.append('role = "job"')
        waves.append("[[waves]]\n" + "\n".join(lines))
    wave_ids = [f"round{k + 1}" for k in range(spec.waves)]
    measures = []
    for j, points in enumerate(spec.scales):
        cols = ", ".join(f'round{k + 1} = "r{k + 1}_s{j + 1}"' for k in range(spec.waves))
        labels = ", ".join(f'"{x}"' for x in _likert_labels(points))
        reverse = [w for k, w in enumerate(wave_ids) if spec.reverse and k % 2 == 1]
        measures.append(textwrap.dedent(f"""\
            [[measures]]
            name = "scale{j + 1}"
            label = "Rating: item {j + 1}"
            type = "likert"
            aim = "main"
            levels = [{", ".join(str(i) for i in range(1, points + 1))}]
            labels = [{labels}]
            missing = {{ {spec.missing_code} = "Refused", "Not sure" = "Not sure" }}
            columns = {{ {cols} }}
            reverse = [{", ".join(f'"{w}"' for w in reverse)}]"""))
    if spec.multi:
        options = ", ".join(f'opt{i} = "Option {i}"' for i in range(1, spec.multi + 1))
        per_wave = "\n".join(
            f"columns.round{k + 1} = {{ " + ", ".join(f'opt{i} = "r{k + 1}_m{i}"' for i in range(1, spec.multi + 1)) + " }"
            for k in range(spec.waves))
        measures.append(f'[[measures]]\nname = "picked"\nlabel = "Options picked"\ntype = "multi"\naim = "main"\n'
                        f"options = {{ {options} }}\n{per_wave}")
    if spec.numeric:
        cols = ", ".join(f'round{k + 1} = "r{k + 1}_n"' for k in range(spec.waves))
        measures.append(f'[[measures]]\nname = "amount"\nlabel = "Amount (0 to 100)"\ntype = "numeric"\naim = "main"\n'
                        f'min = 0\nmax = 100\nmissing = {{ {spec.missing_code if spec.missing_code < 0 else 999} = "Refused" }}\n'
                        f"columns = {{ {cols} }}")
    if spec.binary:
        cols = ", ".join(f'round{k + 1} = "r{k + 1}_b"' for k in range(spec.waves))
        measures.append(f'[[measures]]\nname = "flag"\nlabel = "Has a written plan"\ntype = "binary"\naim = "main"\n'
                        f"columns = {{ {cols} }}")
    councils = ""
    if councils_cols:
        councils = ('[councils]\nfile = "areas.csv"\nkey = "area"\n'
                    'covariates = { band = "category", size = "number", started = "date" }\ngroup_by = ["band"]\n'
                    + ('mergers = "successor"\n' if spec.successor else "") + "\n")
    head = ('title = "Generated study"\ndescription = "A study generated by the fuzzer."\n\n' + councils
            + '[[aims]]\nid = "main"\ntitle = "Main questions"\nintro = "What the rounds asked."\n\n'
            + "[models]\nworkers = 1\n\n")
    return head + "\n\n".join(waves) + "\n\n" + "\n\n".join(measures) + "\n"


def _likert_column(rng: np.random.Generator, n: int, points: int, spec: Spec, reversed_: bool, as_text: bool) -> list:
    values: list = list(rng.integers(1, points + 1, size=n).astype(float))
    if reversed_:
        values = [points + 1 - v for v in values]
    for i in range(n):
        u = rng.random()
        if u < 0.05:
            values[i] = float(spec.missing_code)
        elif u < 0.08:
            values[i] = np.nan
        elif u < 0.10:
            values[i] = float(points + 5)  # out of range
    if as_text:
        labels = _likert_labels(points)
        out = []
        for v in values:
            if pd.isna(v):
                out.append("")
            elif v == spec.missing_code:
                out.append(str(spec.missing_code))
            elif 1 <= v <= points:
                out.append(labels[int(v) - 1])
            else:
                out.append(rng.choice(["Not sure", "banana", str(int(v))]))
        return out
    return values


def _wave_frame(spec: Spec, k: int, councils: list[str], register: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    on = wave_dates(spec)[k][1]
    fmt, style = spec.formats[k], spec.id_styles[k]
    text = fmt in ("csv", "xlsx")
    rows: dict[str, list] = {"area": []}
    if spec.respondent_ids:
        rows["person"] = []
    if spec.roles:
        rows["job"] = []
    for i, code in enumerate(councils):
        if k > 0 and rng.random() < 0.2:
            continue  # this council skipped this round
        now = _identity(code, on, register)
        row = register.loc[now]
        ident = {"gss": now, "dfe": str(int(row["dfe_la_code"])) if pd.notna(row["dfe_la_code"]) else now,
                 "name": _name_variant(str(row["name"]), rng)}[style]
        for r in range(int(rng.integers(1, 4))):
            rows["area"].append(ident)
            if spec.respondent_ids:
                rows["person"].append(f"P{i}-{r}")
            if spec.roles:
                rows["job"].append(["Manager", "Officer", "Partner"][r % 3])
    n = len(rows["area"])
    if n == 0:  # a round nobody answered still has one (unidentified) row
        rows = {key: [""] for key in rows}
        n = 1
    frame = pd.DataFrame(rows)
    for j, points in enumerate(spec.scales):
        reversed_ = spec.reverse and k % 2 == 1
        frame[f"r{k + 1}_s{j + 1}"] = _likert_column(rng, n, points, spec, reversed_, text and spec.text_labels)
    for i in range(1, spec.multi + 1):
        picked = rng.integers(0, 2, size=n).astype(float)
        frame[f"r{k + 1}_m{i}"] = ["Yes" if p else "No" for p in picked] if text else picked
    if spec.numeric:
        amount = np.round(rng.uniform(0, 110, size=n), 1)
        frame[f"r{k + 1}_n"] = amount
    if spec.binary:
        flag = rng.integers(0, 2, size=n).astype(float)
        frame[f"r{k + 1}_b"] = ["Yes" if f else "No" for f in flag] if text else flag
    return frame


def _write_wave(frame: pd.DataFrame, path: Path, fmt: str, spec: Spec, k: int) -> None:
    if fmt == "csv":
        path.write_bytes(frame.to_csv(index=False).encode("utf-8"))
    elif fmt == "xlsx":
        frame.to_excel(path, index=False, sheet_name="Data")
    else:
        flip = spec.reverse and k % 2 == 1  # a reversed wave's file labels code i with level p + 1 - i
        labels = {f"r{k + 1}_s{j + 1}": {float(i): f"Level {p + 1 - i if flip else i}" for i in range(1, p + 1)}
                  | {float(spec.missing_code): "Refused"} for j, p in enumerate(spec.scales)}
        if fmt == "sav":
            missing = {c: [float(spec.missing_code)] for c in labels}
            pyreadstat.write_sav(frame, str(path), variable_value_labels=labels, missing_ranges=missing)
        else:
            pyreadstat.write_dta(frame, str(path), variable_value_labels={c: {int(k_): v for k_, v in m.items()}
                                                                          for c, m in labels.items()})


def _councils_file(spec: Spec, councils: list[str], register: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Keyed as the councils were at the first round (or the last, ``keys_at_end``: one row for merged
    councils) by code or name, some absent, some cells blank."""
    rows, seen = [], set()
    last = wave_dates(spec)[-1][1]
    for code in councils:
        if spec.keys_at_end:
            code = _identity(code, last, register)
        if rng.random() < spec.absent or code in seen:
            continue
        seen.add(code)
        key = code if rng.random() < 0.5 else str(register.loc[code, "name"])
        blank = [rng.random() < spec.blank for _ in range(3)]
        rows.append({"area": key, "band": "" if blank[0] else str(rng.choice(["North", "South", "Mixed"])),
                     "size": "" if blank[1] else str(int(rng.integers(1, 1000))),
                     "started": "" if blank[2] else f"{spec.start_year}-{int(rng.integers(1, 13)):02d}-{int(rng.integers(1, 29)):02d}"})
    return pd.DataFrame(rows, columns=["area", "band", "size", "started"])


def write_study(root: Path, name: str, spec: Spec) -> dict[str, int]:
    """Write ``pipelines/<name>/study.toml`` and ``data/raw/<name>/*`` for ``spec``; return rows per wave."""
    rng = np.random.default_rng(spec.seed)
    register = load_register().set_index("gss_code")
    councils = _councils(spec, rng)
    raw = root / "data" / "raw" / name
    raw.mkdir(parents=True, exist_ok=True)
    files, rows = [], {}
    for k, fmt in enumerate(spec.formats):
        file = f"round{k + 1}.{fmt}"
        frame = _wave_frame(spec, k, councils, register, rng)
        _write_wave(frame, raw / file, fmt, spec, k)
        files.append(file)
        rows[f"round{k + 1}"] = len(frame)
    if spec.councils_file:
        _councils_file(spec, councils, register, rng).to_csv(raw / "areas.csv", index=False)
    config = root / "pipelines" / name
    config.mkdir(parents=True, exist_ok=True)
    (config / "study.toml").write_text(_config(spec, files, spec.councils_file), encoding="utf-8")
    return rows
