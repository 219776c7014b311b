"""Data protection: personal data, pseudonyms, formula injection, no code from data, what git keeps.

Each test fails if its protection is taken away (the report at the top of each test says how that
was checked).
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pyreadstat
import pytest

from impactstudy import stages
from impactstudy.ingest.harmonise import pseudonymise
from impactstudy.pipeline.paths import StudyPaths

from conftest import write_mini_study

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src" / "impactstudy"

# personal data and raw ids put in the mini study below: none may reach a processed file or a report
PII_VALUES = ["a.person@example.org", "Jane Q. Signatory", "b.person@example.org", "Sig: J.Bloggs"]
RAW_IDS = ["resp-00017", "resp-00042", "resp-00099"]
HOSTILE = ["=HYPERLINK(\"http://x\",\"y\")", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)", "\tTAB", "\rCR"]


def _protection_study(root: Path) -> StudyPaths:
    """The mini study with distinctive personal data, raw ids and hostile text in its CSV wave."""
    write_mini_study(root)
    paths = StudyPaths(root.resolve(), "mini")
    text = paths.config.read_text()
    text += '\n[[measures]]\nname = "signature"\ntype = "text"\npii = true\ncolumns = { w2 = "Signed" }\n'
    paths.config.write_text(text)
    frame, meta = pyreadstat.read_sav(str(paths.raw / "w1.sav"), user_missing=True)
    frame["rid"] = [RAW_IDS[0], RAW_IDS[1], RAW_IDS[1], RAW_IDS[2], "resp-00100"]
    frame["email"] = [PII_VALUES[0], PII_VALUES[2], PII_VALUES[2], "c@x.org", "d@x.org"]
    pyreadstat.write_sav(frame, str(paths.raw / "w1.sav"), variable_value_labels=meta.variable_value_labels,
                         missing_ranges={"q1": [8, 9]})
    w2 = pd.DataFrame({
        "Council": ["Hartlepool", "Middlesbrough", HOSTILE[0], "-801"],
        "ID": [RAW_IDS[0], RAW_IDS[1], "resp-00200", "resp-00201"],
        "Role": ["Strategic lead", HOSTILE[3], "Partner", "Partner"],
        "Q1 effectiveness": ["Very good", HOSTILE[1], HOSTILE[2], "-2"],
        "Q2 plan": ["Yes", HOSTILE[4], HOSTILE[5], ""],
        "Comment": [HOSTILE[0], "fine", "", "ok"],
        "Signed": [PII_VALUES[1], PII_VALUES[3], "", "x"],
    })
    # "\r\n" line ends, so the writer quotes the cell holding a bare carriage return
    (paths.raw / "w2.csv").write_text(w2.to_csv(index=False, lineterminator="\r\n"), encoding="utf-8", newline="")
    return paths


@pytest.fixture(scope="module")
def linked(tmp_path_factory) -> StudyPaths:
    paths = _protection_study(tmp_path_factory.mktemp("protection"))
    stages.run("mini", ["link"], root=paths.root)
    return paths


def _output_files(paths: StudyPaths) -> list[Path]:
    files = [p for base in (paths.processed, paths.reports) if base.exists() for p in base.rglob("*") if p.is_file()]
    assert any(p.suffix == ".parquet" for p in files) and any(p.suffix == ".csv" for p in files)
    return sorted(files)


def _text_of(path: Path) -> str:
    """Everything a file holds as text, decoded (Parquet and SPSS are compressed or binary)."""
    if path.suffix == ".parquet":
        table = pq.read_table(path)
        meta = b" ".join(k + b" " + v for k, v in (table.schema.metadata or {}).items()).decode("utf-8", "replace")
        return meta + " " + " ".join(table.column_names) + " " + table.to_pandas().astype(str).to_csv()
    if path.suffix == ".sav":
        frame, meta = pyreadstat.read_sav(str(path))
        return frame.astype(str).to_csv() + json.dumps(meta.column_names_to_labels) + str(meta.variable_value_labels)
    return path.read_bytes().decode("utf-8", "replace")


# ------------------------------------------------------------------------------------ personal data


def test_pii_never_reaches_processed_files_or_reports(linked):
    """Checked by letting Study.analysed_measures return every measure: the e-mails reach waves/w1.parquet."""
    for path in _output_files(linked):
        text = _text_of(path)
        for value in PII_VALUES:
            assert value not in text, f"personal data {value!r} in {path}"
        assert not re.search(r"\bemail\b|\bsignature\b", text), f"a pii measure is named in {path}"


def test_respondent_ids_pseudonymised_not_recoverable(linked):
    """Checked by making pseudonymise return the raw id (raw ids reach the outputs) and by a fixed salt."""
    salt_path = linked.secret_salt
    assert salt_path.is_file() and salt_path.parent == linked.root / ".secrets"
    assert stat.S_IMODE(salt_path.stat().st_mode) == 0o600
    salt = salt_path.read_bytes().strip()
    assert len(salt) >= 32
    for path in _output_files(linked):
        assert not path.is_relative_to(salt_path.parent)
        text = _text_of(path)
        assert salt.decode() not in text
        for raw_id in RAW_IDS:
            assert raw_id not in text, f"raw respondent id {raw_id!r} in {path}"
    w1 = pd.read_parquet(linked.wave_file("w1"))
    w2 = pd.read_parquet(linked.wave_file("w2"))
    # the same person links across waves ...
    assert set(w1["respondent_id"]) & set(w2["respondent_id"]) == {pseudonymise(i, salt) for i in RAW_IDS[:2]}
    # ... but without the secret salt the pseudonym cannot be recomputed from a guessed id
    for guess_salt in (b"", b"mini", b"demo", b"0" * 64):
        assert pseudonymise(RAW_IDS[0], guess_salt) not in set(w1["respondent_id"])


def test_each_study_root_has_its_own_secret_salt(tmp_path):
    """Checked by making load_salt return a constant: both roots then give the same pseudonyms."""
    ids = []
    for name in ("one", "two"):
        paths = _protection_study(tmp_path / name)
        stages.run("mini", ["ingest"], root=paths.root)
        ids.append(set(pd.read_parquet(paths.wave_file("w1"))["respondent_id"]))
    assert len(ids[0]) == 3 and not ids[0] & ids[1]  # three accepted rows, three people


# ------------------------------------------------------------------------------ formula injection


def _cells(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_bytes().decode("utf-8"), newline="")))


def test_csv_outputs_neutralise_formula_injection(linked):
    """Checked by making atomic.neutralise_formula return its value unchanged: hostile cells start with '='."""
    files = [linked.quarantine, linked.linkage, linked.link_quarantine]
    cells = [value for path in files for row in _cells(path) for value in row.values()]
    for path in (linked.waves_dir).glob("*.quarantine.csv"):
        cells += [value for row in _cells(path) for value in row.values()]
    for value in cells:
        if value and value[0] in "=+-@\t\r":
            float(value)  # only numbers may start so
    reached = {value[1:] for value in cells if value.startswith("'")}
    # the hostile council name (linkage, link quarantine) and answers (ingest quarantine) got there, neutralised
    assert set(HOSTILE) - {HOSTILE[3]} <= reached  # HOSTILE[3] is a role: not written to any CSV
    # negative numbers stay numbers: the out-of-range answer and the negative council code
    values = _cells(linked.quarantine)
    assert {"-2", "-2.0"} & {row["value"] for row in values}
    assert "-801" in {row["council_raw"] for row in _cells(linked.linkage)}


def test_hostile_text_kept_as_text_in_parquet(linked):
    """The neutralising apostrophe is for spreadsheets only: the analysis files keep the answer as given."""
    w2 = pd.read_parquet(linked.wave_file("w2")).set_index("source_row")
    assert w2.loc[1, "note"] == HOSTILE[0]
    assert w2.loc[3, "council_raw"] == HOSTILE[0]


# ------------------------------------------------------------------------- no code from data or config

FORBIDDEN = [
    r"\bimport\s+pickle\b", r"\bfrom\s+pickle\b", r"\bpickle\.", r"\bcPickle\b", r"\bdill\b", r"\bjoblib\.load\b",
    r"(?<![\w.])eval\s*\(", r"(?<![\w.])exec\s*\(", r"\byaml\.load\s*\(", r"\byaml\.unsafe_load\b",
    r"\bread_pickle\b", r"\bto_pickle\b", r"allow_pickle\s*=\s*True", r"\b(numpy|np)\.load\s*\(", r"\bshelve\b",
    r"\bmarshal\.loads?\b", r"\b__import__\s*\(", r"\bcompile\s*\(.*['\"]exec['\"]",
]


def test_nothing_loads_pickles_or_evaluates_strings():
    """Checked by adding `pd.read_pickle(path)` and `eval(text)` lines to a copy of a module: both found.

    ProcessPoolExecutor (models.py) pickles between impactstudy's own processes; that is not loading
    data, and it is no explicit call, so it is not matched.
    """
    hits = []
    for path in sorted(SRC.rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            code = line.split("#", 1)[0]
            for pattern in FORBIDDEN:
                if re.search(pattern, code):
                    hits.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert not hits, "\n".join(hits)


def test_forbidden_patterns_are_found():
    """The grep above would notice the calls it forbids (so an empty result means something)."""
    lines = ["df = pd.read_pickle(p)", "x = eval(text)", "exec(code)", "yaml.load(f)", "np.load(f, allow_pickle=True)",
             "import pickle", "import shelve"]
    for line in lines:
        assert any(re.search(p, line) for p in FORBIDDEN), line
    for line in ["literal_eval = None", "self.evaluate(x)", "executor.submit(f)", "ProcessPoolExecutor(max_workers=2)"]:
        assert not any(re.search(p, line) for p in FORBIDDEN), line


def test_config_values_are_not_evaluated(tmp_path):
    """A config value that looks like code is data: it ends up as text, or as a config error."""
    write_mini_study(tmp_path)
    config = tmp_path / "pipelines/mini/study.toml"
    marker = tmp_path / "pwned"
    config.write_text(config.read_text().replace('label = "Comment"',
                                                 f'label = "__import__(\'os\').system(\'touch {marker}\')"'))
    stages.run("mini", ["ingest"], root=tmp_path)
    assert not marker.exists()


# ---------------------------------------------------------------------------------------- git


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_gitignore_keeps_data_and_reports_out_of_git(tmp_path):
    """Checked by deleting the /data/raw/* line from a copy of .gitignore: a raw file is then not ignored."""
    shutil.copyfile(REPO / ".gitignore", tmp_path / ".gitignore")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    ignored = ["data/raw/demo/wave1_baseline.sav", "data/raw/mystudy/w1.csv", "data/processed/demo/panel_long.parquet",
               "data/processed/demo/quarantine.csv", "reports/demo/index.html", "reports/demo/tables/contrasts.csv",
               ".secrets/demo.salt"]
    kept = ["pipelines/demo/study.toml", "src/impactstudy/ingest/stage.py", "README.md", "data/raw/.gitkeep",
            "data/processed/.gitkeep", "reports/.gitkeep"]
    for path in ignored + kept:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("x")
    result = subprocess.run(["git", "-C", str(tmp_path), "check-ignore", *ignored, *kept],
                            capture_output=True, text=True, check=False)
    assert sorted(result.stdout.split()) == sorted(ignored)
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Data protection", 1)[1].split("\n## ", 1)[0]
    assert ".gitignore" in section and "data/raw" in section and "reports" in section and "sensitive" in section
