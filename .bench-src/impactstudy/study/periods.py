"""Reporting periods as a study declares them: ``2013`` or ``201314`` and the date each period ends.

Below the stages because the impact stage reads outcome files by them and the demo writes its
outcome file and true cohorts by the same rules (see docs/impact.md, "Years").
"""

from __future__ import annotations

import re
from datetime import date

import pandas as pd

_PERIOD = re.compile(r"^(\d{4})(?:[-/]?(\d{2}))?$")


def period_end(text: str, year_end: tuple[int, int]) -> date | None:
    """The end date of the reporting period written ``text`` (``2013``, ``201314``, ``2013-14``).

    ``None`` when the text is not a period, or a two-year span whose second year does not follow its
    first (``201315``).
    """
    match = _PERIOD.match(str(text).strip())
    if not match:
        return None
    first, second = int(match.group(1)), match.group(2)
    if second is None:
        end_year = first
    elif int(second) == (first + 1) % 100:
        end_year = first + 1
    else:
        return None
    month, day = year_end
    return date(end_year, month, day)


def cohort_year(when: date | pd.Timestamp | None, year_end: tuple[int, int]) -> int | None:
    """The outcome year whose reporting period contains ``when`` (its first, partly treated year)."""
    if when is None or pd.isna(when):
        return None
    when = pd.Timestamp(when).date()
    month, day = year_end
    return when.year if when <= date(when.year, month, day) else when.year + 1
