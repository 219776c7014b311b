"""Raw identifiers and cells as the pipeline compares them, and respondents' pseudonyms.

Below the stages because more than the ingest stage needs them: the demo computes the answer ids the
coding sheets carry (:func:`impactstudy.pipeline.coding.answer_ids`) from the pseudonyms ingest will give.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from typing import Any

import numpy as np
import pandas as pd

from impactstudy.study.config import code_key


def raw_key(value: Any) -> str | None:
    """A raw cell as a comparable key: numbers as repr(float), text stripped; None when blank."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return repr(float(value))
    text = str(value).strip()
    if not text:
        return None
    return code_key(text)


def identifier_text(value: Any) -> str | None:
    """An identifier cell as text: 801.0 → '801', blanks → None, text stripped."""
    if isinstance(value, str):  # the common case, without raw_key's number parsing (ids differ per row)
        return value.strip() or None
    key = raw_key(value)
    if key is None:
        return None
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        number = float(value)
        return str(int(number)) if number.is_integer() else str(number)
    return str(value).strip()


def respondent_key(raw_id: str) -> str:
    """A respondent id as compared: case and runs of spaces do not tell two respondents apart ("ab 1" = "AB  1")."""
    return " ".join(raw_id.split()).casefold()


def pseudonymiser(salt: bytes) -> Any:
    """The function giving each respondent id a stable pseudonym under ``salt``: the same person links
    across waves, the id is not recoverable. The keyed hash is set up once, then copied per id."""
    keyed = hmac.new(salt, digestmod=hashlib.sha256)

    def pseudonym(raw_id: str) -> str:
        digest = keyed.copy()
        digest.update(respondent_key(raw_id).encode("utf-8"))
        return "P" + digest.hexdigest()[:16]

    return pseudonym
