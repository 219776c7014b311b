"""The register of English upper-tier councils, and resolution of names and codes to GSS codes.

Survey files name councils in many ways: GSS codes in any case, DfE's 3-digit codes (often as
Excel/SPSS floats such as ``801.0``), official names, everyday variants (``Bristol``, ``St Helens``,
``Durham``) and typos. :func:`resolve` turns each of them into the GSS code of the authority that
was *valid on a given date*, and says how it got there, so that linkage is auditable and a wrong
guess is never silent.

Resolution order, first hit wins (``method`` in brackets):

1. GSS code, e.g. ``' e06000023 '`` (``code``, note ``GSS code``).
2. DfE 3-digit code, e.g. ``801``, ``'801'``, ``'801.0'`` (``code``, note ``DfE code 801``).
3. Official register name after normalisation (``exact``).
4. Known variant from the shipped alias table plus a study's own aliases (``alias``).
5. Fuzzy match on normalised names and aliases (``fuzzy``): the best :func:`rapidfuzz.fuzz.ratio`
   score must be at least :data:`FUZZY_CUTOFF`, beat the best *different* authority by more than
   :data:`FUZZY_MARGIN` points, and be strictly fewer edits away (rapidfuzz ``OSA`` distance, where
   swapping two neighbouring letters is one edit) than any other authority. Otherwise the input is
   ``unmatched`` and the note names the two candidates.

Numbers and code-like strings never go to the fuzzy step: a code that is not in the register is
``unmatched``, not "nearly" another code.

The identifier then picks an authority by date (``as_of``; ``None`` means today):

* A name or DfE code that several register rows share (``Northumberland``, DfE ``825``) means the
  row valid on ``as_of``.
* An identifier whose authority had ended by ``as_of`` follows ``successor_codes``: a code change
  (Gateshead E08000020 → E08000037) or a merger (Poole → Bournemouth, Christchurch and Poole)
  maps to the successor with a note. A split (Northamptonshire, Cumbria) is ``unmatched`` with the
  parts named in the note, because no single successor is right. The one exception is an
  authority whose *first* listed successor carries its own name: Dorset County (E10000009) maps to
  Dorset (E06000059) with a note that the Christchurch part went to BCP (E06000058). Five of its six
  districts went to Dorset, the register lists that continuing authority first (SOURCES.md, "Rows
  to treat with care"), and county series such as children's services continue in it, so flagging
  it would throw away a well-defined answer.
* An identifier whose authority did not yet exist on ``as_of`` is ``unmatched`` ("not yet
  created"), except a pure code change (same name, DfE code and type), where the new code maps back
  to the old code that was in use on that date.
"""

from __future__ import annotations

import csv
import functools
import io
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

from impactstudy.errors import ConfigError
from impactstudy.pipeline.atomic import safe_for_spreadsheet

#: Lowest rapidfuzz ``fuzz.ratio`` (0-100, on normalised names) accepted as a fuzzy match.
#: One typing slip in a name of 7+ letters scores 85 or more; unrelated names typically below 70.
FUZZY_CUTOFF = 85.0
#: A fuzzy match must beat the best *different* authority by more than this many points, or it is
#: too close to call ("Est Sussex" scores 95.2 against both East and West Sussex). With 5 points,
#: "Barent" went to Brent instead of Barnet; with 10 (plus the edit-count rule in ``_fuzzy``) no
#: one-slip typo in a ~37,000-typo simulation went wrong, and about 1 in 20 became ambiguous.
FUZZY_MARGIN = 10.0
#: The register is complete from this date (the 2009 unitary reorganisation); earlier dates would
#: resolve against authorities that are not in it.
REGISTER_START = date(2009, 4, 1)

RESULT_COLUMNS = ["input", "gss_code", "name", "method", "score", "note"]

_GSS_RE = re.compile(r"^[A-Z]\d{8}$")
_NUMBER_RE = re.compile(r"^\d+(\.0*)?$")
# Affixes that only say what kind of council it is. Stripped from the ends of a normalised name
# (longest first) after the official names have been tried as they stand.
_PREFIXES = (
    "council of the ",
    "metropolitan borough of ",
    "london borough of ",
    "royal borough of ",
    "city and county of ",
    "county borough of ",
    "borough of ",
    "county of ",
    "city of ",
    "county ",
    "the ",
)
_SUFFIXES = (
    " metropolitan borough council",
    " metropolitan district council",
    " borough council",
    " county council",
    " district council",
    " city council",
    " unitary authority",
    " council",
    " county",
    " city",
    " mbc",
    " lbc",
    " ua",
)
# "City of London" must keep its prefix: "London" alone means the region (or the GLA).
_PROTECTED = frozenset({"city of london"})
_WORD_SUBS = {"saint": "st"}


@functools.lru_cache(maxsize=65536)
def _basic(text: str) -> str:
    """Fold case, accents, punctuation, ``&``/``and``, ``St.``/``Saint``, ``X, City of`` order."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    text = re.sub(r"^(.*?),\s*(city|county|the)\s+of\s*$", r"\2 of \1", text.strip())
    text = text.replace("&", " and ")
    text = re.sub(r"[^\w\s]|_", " ", text)
    words = [_WORD_SUBS.get(w, w) for w in text.split()]
    return " ".join(words)


@functools.lru_cache(maxsize=65536)
def normalise(text: str) -> str:
    """Normalised matching key: :func:`_basic` plus council-type prefixes and suffixes removed.

    ``'Bristol City Council'``, ``'City of Bristol'`` and ``'Bristol, City of'`` all give
    ``'bristol'``; ``'Nottingham City'`` gives ``'nottingham'``, which stays distinct from
    ``'nottinghamshire'`` because only whole words are removed.
    """
    key = _basic(text)
    changed = True
    while changed and key not in _PROTECTED:
        changed = False
        for prefix in _PREFIXES:
            if key.startswith(prefix) and len(key) > len(prefix):
                key, changed = key[len(prefix):], True
        for suffix in _SUFFIXES:
            if key.endswith(suffix) and len(key) > len(suffix):
                key, changed = key[: -len(suffix)], True
    return key


@dataclass(frozen=True)
class _Row:
    gss: str
    name: str
    kind: str
    dfe: str
    start: date
    end: date | None
    successors: tuple[str, ...]

    def live(self, on: date) -> bool:
        return self.start <= on and (self.end is None or on <= self.end)

    def label(self) -> str:
        return f"{self.gss} {self.name}"


@dataclass(frozen=True)
class _Register:
    rows: dict[str, _Row]
    by_dfe: dict[str, tuple[str, ...]]
    by_basic: dict[str, tuple[str, ...]]
    by_key: dict[str, tuple[str, ...]]
    predecessors: dict[str, tuple[str, ...]]

    def lineage(self, gss: str) -> tuple[str, ...]:
        """All rows that share ``gss``'s name: a name means whichever of them is valid on a date."""
        return self.by_key[normalise(self.rows[gss].name)]


def _group(pairs: Iterable[tuple[str, str]]) -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for key, gss in pairs:
        out.setdefault(key, []).append(gss)
    return {key: tuple(codes) for key, codes in out.items()}


def _data_path(filename: str) -> Path:
    return Path(str(resources.files("impactstudy.councils") / filename))


@functools.cache
def _register_frame() -> pd.DataFrame:
    frame = pd.read_csv(_data_path("councils.csv"), dtype=str, keep_default_na=False)
    frame["dfe_la_code"] = frame["dfe_la_code"].str.zfill(3)
    for column in ("valid_from", "valid_to"):
        frame[column] = pd.to_datetime(frame[column].replace("", None), format="%Y-%m-%d")
    return frame


def load_register() -> pd.DataFrame:
    """The shipped register, one row per GSS code (165 rows; see docs/councils.md).

    Columns ``gss_code, name, authority_type, region, dfe_la_code, valid_from, valid_to,
    successor_codes``; ``dfe_la_code`` is a 3-character string, ``valid_from``/``valid_to`` are
    datetimes (``valid_to`` NaT while the code is in use), ``successor_codes`` is ``;``-separated,
    empty when there is none. Read once per process; each call returns a copy.
    """
    return _register_frame().copy()


def councils_on(as_of: date | str | None = None) -> pd.DataFrame:
    """Register rows valid on ``as_of`` (default today): 152 on 2013-04-01, 153 on 2024-04-01."""
    day = pd.Timestamp(_as_date(as_of))
    frame = load_register()
    live = (frame["valid_from"] <= day) & (frame["valid_to"].isna() | (frame["valid_to"] >= day))
    return frame[live].reset_index(drop=True)


@functools.cache
def _register() -> _Register:
    rows = {}
    for rec in _register_frame().itertuples(index=False):
        rows[rec.gss_code] = _Row(
            gss=rec.gss_code,
            name=rec.name,
            kind=rec.authority_type,
            dfe=rec.dfe_la_code,
            start=rec.valid_from.date(),
            end=None if pd.isna(rec.valid_to) else rec.valid_to.date(),
            successors=tuple(code for code in rec.successor_codes.split(";") if code),
        )
    return _Register(
        rows=rows,
        by_dfe=_group((row.dfe, row.gss) for row in rows.values()),
        by_basic=_group((_basic(row.name), row.gss) for row in rows.values()),
        by_key=_group((normalise(row.name), row.gss) for row in rows.values()),
        predecessors=_group((succ, row.gss) for row in rows.values() for succ in row.successors),
    )


def _as_date(value: date | str | None) -> date:
    if value is None:
        return date.today()
    if isinstance(value, datetime):  # includes pandas.Timestamp
        day = value.date()
    elif isinstance(value, date):
        day = value
    else:
        try:
            day = date.fromisoformat(str(value).strip())
        except ValueError:
            raise ConfigError(f"as_of {value!r} is not a date: give it as YYYY-MM-DD") from None
    if day < REGISTER_START:
        raise ConfigError(
            f"as_of {day} is before the council register starts ({REGISTER_START}): "
            "use a later date"
        )
    return day


# --------------------------------------------------------------------------------------------
# Aliases


def _alias_table(table: pd.DataFrame, where: str, register: _Register) -> dict[str, str]:
    """``alias,gss_code`` rows → {normalised alias: gss_code}, checked against the register."""
    missing = {"alias", "gss_code"} - set(table.columns)
    if missing:
        raise ConfigError(
            f"{where}: needs columns alias,gss_code (missing {', '.join(sorted(missing))})"
        )
    out: dict[str, str] = {}
    for line, (alias, gss) in enumerate(zip(table["alias"], table["gss_code"]), start=2):
        alias, gss = str(alias).strip(), str(gss).strip().upper()
        key = normalise(alias)
        if not key:
            raise ConfigError(f"{where} row {line}: alias is empty")
        if gss not in register.rows:
            raise ConfigError(
                f"{where} row {line}: gss_code {gss!r} for alias {alias!r} is not in the "
                "council register; use an upper-tier GSS code (E06/E08/E09/E10)"
            )
        official = register.by_key.get(key)
        if official and gss not in official:
            raise ConfigError(
                f"{where} row {line}: alias {alias!r} is the official name of "
                f"{register.rows[official[-1]].label()}, so it can never mean {gss}; remove it"
            )
        if out.get(key, gss) != gss:
            raise ConfigError(
                f"{where} row {line}: alias {alias!r} is given twice with different codes "
                f"({out[key]} and {gss})"
            )
        out[key] = gss
    return out


@functools.cache
def _shipped_aliases() -> dict[str, str]:
    path = _data_path("council_aliases.csv")
    table = pd.read_csv(path, dtype=str, keep_default_na=False, comment="#")
    return _alias_table(table, "council_aliases.csv (shipped)", _register())


def load_aliases(
    source: Mapping[str, str] | pd.DataFrame | str | Path | None,
) -> dict[str, str]:
    """A study's aliases, checked, as {normalised alias: gss_code}; ``None`` gives ``{}``.

    ``source`` is a mapping ``alias -> gss_code``, a DataFrame with columns ``alias,gss_code``,
    or the path of such a CSV. An unknown GSS code, an alias given twice with different codes,
    or an alias that is another authority's official name raises :class:`ConfigError`.
    """
    if source is None:
        return {}
    if isinstance(source, (str, Path)):
        try:
            table = pd.read_csv(source, dtype=str, keep_default_na=False, comment="#")
        except (OSError, pd.errors.ParserError, UnicodeDecodeError) as err:
            raise ConfigError(f"{source}: cannot read the aliases CSV ({err})") from None
        where = str(source)
    elif isinstance(source, pd.DataFrame):
        table, where = source, "aliases table"
    else:
        table = pd.DataFrame({"alias": list(source.keys()), "gss_code": list(source.values())})
        where = "aliases mapping"
    return _alias_table(table, where, _register())


def name_keys(aliases: Mapping[str, str] | pd.DataFrame | str | Path | None = None) -> frozenset[str]:
    """Every way the register knows to write a council, as :func:`normalise` keys: each authority's
    official name (``'Bristol, City of'`` gives ``'bristol'``), the shipped aliases and a study's own
    (``aliases``, as :func:`load_aliases` takes them). For finding councils named in free text, so that
    a quote can have them taken out."""
    names = {normalise(name) for name in _register_frame()["name"]}
    return frozenset(k for k in names | set(_shipped_aliases()) | set(load_aliases(aliases)) if k)


# --------------------------------------------------------------------------------------------
# Resolution


@dataclass(frozen=True)
class _Hit:
    """An identifier recognised as naming the register rows ``candidates``."""

    candidates: tuple[str, ...]
    method: str
    score: float
    note: str


@dataclass(frozen=True)
class _Result:
    gss_code: str | None
    name: str | None
    method: str
    score: float
    note: str


def _unmatched(note: str) -> _Result:
    return _Result(None, None, "unmatched", np.nan, note)


def _as_text(value: object) -> str | None:
    """The input as text (``801.0`` → ``'801'``), or ``None`` when it is empty or missing."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (float, np.floating)):
        if np.isnan(value):
            return None
        if np.isfinite(value) and float(value).is_integer():
            return str(int(value))
    text = str(value).strip()
    return text or None


def _identify_code(text: str, register: _Register) -> _Hit | _Result | None:
    """GSS or DfE code → hit; a code-like string not in the register → unmatched; else None."""
    compact = re.sub(r"\s+", "", text).upper()
    if _GSS_RE.match(compact):
        if compact in register.rows:
            return _Hit((compact,), "code", 100.0, "GSS code")
        return _unmatched(f"GSS code {compact} is not an upper-tier authority in the register")
    if _NUMBER_RE.match(compact):
        dfe = compact.split(".")[0]
        codes = register.by_dfe.get(dfe.zfill(3)) if len(dfe) <= 3 else None
        if not codes:
            return _unmatched(f"number {text} is not a DfE LA code in the register")
        note = f"DfE code {dfe}"
        if len(codes) > 1:
            rows = sorted((register.rows[c] for c in codes), key=lambda row: row.start)
            note += " (" + ", then ".join(_span(row) for row in rows) + ")"
        return _Hit(codes, "code", 100.0, note)
    return None


def _span(row: _Row) -> str:
    until = f" to {row.end}" if row.end else ""
    return f"{row.gss} {row.kind} from {row.start}{until}"


def _identify_name(
    key: str, basic: str, aliases: Mapping[str, str], register: _Register
) -> _Hit | None:
    """Official name as written (after :func:`_basic`), then normalised, then an alias."""
    if basic in register.by_basic:
        return _Hit(register.by_basic[basic], "exact", 100.0, "")
    if key in register.by_key:
        return _Hit(register.by_key[key], "exact", 100.0, "")
    if key in aliases:
        return _Hit(register.lineage(aliases[key]), "alias", 100.0, "")
    return None


def _fuzzy(keys: list[str], aliases: Mapping[str, str], register: _Register) -> dict[str, object]:
    """Fuzzy-match normalised keys in one vectorised pass: key → hit or unmatched result."""
    if not keys:
        return {}
    # Every choice belongs to one lineage (an authority's name key), so that the old and new rows
    # of one authority, or an alias and its official name, never compete with each other.
    choices = sorted(
        {(key, key) for key in register.by_key}
        | {(normalise(register.rows[gss].name), alias) for alias, gss in aliases.items()}
    )
    owners = [owner for owner, _ in choices]
    starts = [i for i in range(len(owners)) if i == 0 or owners[i] != owners[i - 1]]
    lineages = [owners[i] for i in starts]
    targets = [choice for _, choice in choices]
    scores = np.maximum.reduceat(
        process.cdist(keys, targets, scorer=fuzz.ratio, dtype=np.float32), starts, axis=1
    )
    edits = np.minimum.reduceat(
        process.cdist(keys, targets, scorer=OSA.distance, dtype=np.int32), starts, axis=1
    )

    def label(i: int) -> str:
        return repr(register.rows[register.by_key[lineages[i]][-1]].name)

    out: dict[str, object] = {}
    for key, score, dist in zip(keys, scores, edits):
        best, runner = (int(i) for i in np.argsort(-score, kind="stable")[:2])
        rival_dist = np.where(np.arange(len(dist)) == best, np.iinfo(np.int32).max, dist)
        rival = int(np.argmin(rival_dist))
        if score[best] < FUZZY_CUTOFF:
            out[key] = _unmatched(
                f"no name or alias matches; closest is {label(best)} at {score[best]:.1f} "
                f"(cutoff {FUZZY_CUTOFF:g})"
            )
        elif score[best] - score[runner] <= FUZZY_MARGIN or dist[rival] <= dist[best]:
            other = runner if score[best] - score[runner] <= FUZZY_MARGIN else rival
            out[key] = _unmatched(
                f"ambiguous: {label(best)} ({score[best]:.1f}) and {label(other)} "
                f"({score[other]:.1f}) are too close to call; add an alias to decide"
            )
        else:
            note = f"fuzzy match to {label(best)}; next best {label(runner)} at {score[runner]:.1f}"
            score_best = round(float(score[best]), 1)
            out[key] = _Hit(register.by_key[lineages[best]], "fuzzy", score_best, note)
    return out


def _settle(hit: _Hit, on: date, register: _Register) -> _Result:
    """Among the rows an identifier names, pick the authority valid on ``on`` (see module doc)."""
    rows = [register.rows[code] for code in hit.candidates]
    notes = [hit.note] if hit.note else []

    def done(row: _Row) -> _Result:
        return _Result(row.gss, row.name, hit.method, hit.score, "; ".join(notes))

    def fail(note: str) -> _Result:
        return _unmatched("; ".join([*notes, note]))

    live = [row for row in rows if row.live(on)]
    if live:
        return done(live[0])
    ended = [row for row in rows if row.end is not None and row.end < on]
    if not ended:
        first = min(rows, key=lambda row: row.start)
        old = [register.rows[code] for code in register.predecessors.get(first.gss, ())]
        if len(old) == 1 and _is_code_change(old[0], first) and old[0].live(on):
            notes.append(
                f"{first.gss} not in use until {first.start}; code on {on} was {old[0].gss}"
            )
            return done(old[0])
        return fail(f"{first.label()} not yet created on {on} (from {first.start})")
    row = max(ended, key=lambda row: row.end)
    while not row.live(on):
        successors = [register.rows[code] for code in row.successors]
        if not successors:
            return fail(f"{row.label()} ended {row.end} with no successor in the register")
        main = successors[0]
        if len(successors) > 1 and normalise(main.name) != normalise(row.name):
            parts = " and ".join(s.label() for s in successors)
            return fail(f"{row.label()} was split on {main.start} into {parts}")
        if len(successors) > 1:
            others = ", ".join(s.label() for s in successors[1:])
            notes.append(
                f"{row.label()} ({row.kind}) ended {row.end}; mapped to its main successor "
                f"{main.label()} ({main.kind}); part went to {others}"
            )
        elif _is_code_change(row, main):
            notes.append(f"{row.gss} replaced by {main.gss} on {main.start} (code change)")
        elif len(register.predecessors[main.gss]) > 1:
            notes.append(f"{row.label()} merged into {main.label()} on {main.start}")
        else:
            notes.append(
                f"{row.label()} ({row.kind}) replaced by {main.label()} ({main.kind}) "
                f"on {main.start}"
            )
        row = main
    return done(row)


def same_authority_code(gss: str, as_of: date | str | None = None) -> str:
    """The code the authority with GSS code ``gss`` has on ``as_of``, following code changes only.

    A new code for the same authority (one successor with the same name, DfE code and type, as
    Northumberland and Gateshead in 2013) is followed; a merger or split is not, since a successor
    there is a different authority. An unknown code is returned as it is.
    """
    on, register = _as_date(as_of), _register()
    current = register.rows.get(gss)
    while current is not None and len(current.successors) == 1:
        new = register.rows.get(current.successors[0])
        if new is None or not _is_code_change(current, new) or new.start > on:
            break
        current = new
    return current.gss if current is not None else gss


def _is_code_change(old: _Row, new: _Row) -> bool:
    """Same authority under a new code: one successor with the same name, DfE code and type."""
    return old.successors == (new.gss,) and (old.name, old.dfe, old.kind) == (
        new.name, new.dfe, new.kind
    )


def resolve(
    values: Iterable[str | int | float | None],
    as_of: date | str | None = None,
    aliases: Mapping[str, str] | pd.DataFrame | str | Path | None = None,
) -> pd.DataFrame:
    """Resolve council identifiers to the GSS code of the authority valid on ``as_of``.

    Returns one row per input, in input order, with columns ``input`` (the value as given),
    ``gss_code`` and ``name`` (register values; missing when unmatched), ``method``
    (``code|exact|alias|fuzzy|unmatched``), ``score`` (100 for deterministic methods, the rapidfuzz
    score for ``fuzzy``, NaN for ``unmatched``) and ``note`` (which code type, reorganisations
    followed, or why nothing matched). ``as_of=None`` means today. ``aliases`` extends the shipped
    alias table (see :func:`load_aliases`); a study alias overrides a shipped one. The rules are in
    the module docstring and docs/councils.md. Each distinct value is resolved once.
    """
    values = list(values)
    on = _as_date(as_of)
    register = _register()
    table = {**_shipped_aliases(), **load_aliases(aliases)}

    found: dict[str | None, _Hit | _Result] = {None: _unmatched("empty")}
    for text in {_as_text(value) for value in values} - {None}:
        code = _identify_code(text, register)
        if code is not None:
            found[text] = code
        elif not normalise(text):
            found[text] = _unmatched("empty")
        else:
            found[text] = _identify_name(normalise(text), _basic(text), table, register)
    pending = sorted({normalise(text) for text, hit in found.items() if hit is None})
    fuzzy = _fuzzy(pending, table, register)
    results: dict[str | None, _Result] = {}
    for text, hit in found.items():
        if hit is None:
            hit = fuzzy[normalise(text)]
        results[text] = _settle(hit, on, register) if isinstance(hit, _Hit) else hit

    rows = [results[_as_text(value)] for value in values]
    return pd.DataFrame(
        {
            "input": pd.Series(values, dtype=object),
            "gss_code": pd.Series([r.gss_code for r in rows], dtype="string"),
            "name": pd.Series([r.name for r in rows], dtype="string"),
            "method": pd.Series([r.method for r in rows], dtype="string"),
            "score": pd.Series([r.score for r in rows], dtype="float64"),
            "note": pd.Series([r.note for r in rows], dtype="string"),
        },
        columns=RESULT_COLUMNS,
    )


def resolve_to_csv(
    values: Iterable[str | int | float | None],
    as_of: date | str | None = None,
    aliases: Mapping[str, str] | pd.DataFrame | str | Path | None = None,
) -> str:
    """:func:`resolve` as CSV text with a header row (for ``impactstudy councils resolve``).

    The values are echoed in the output, so text a spreadsheet would run as a formula (``=HYPERLINK(…)``,
    ``@SUM(…)``) is neutralised, as in every CSV the pipeline writes.
    """
    buffer = io.StringIO()
    safe_for_spreadsheet(resolve(values, as_of=as_of, aliases=aliases)).to_csv(
        buffer, index=False, float_format="%.1f", quoting=csv.QUOTE_MINIMAL, lineterminator="\n"
    )
    return buffer.getvalue()
