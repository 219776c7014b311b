""""Did you mean" hints: the names a user probably meant, for one-line error messages.

One function for every such hint (config keys and values, raw columns, coding-sheet headings, outcome
columns), so each caller chooses only how many names to offer, how close they must be, and the wording.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(name: str, choices: Iterable[str], *, n: int = 3, cutoff: float = 0.5) -> list[str]:
    """Up to ``n`` of ``choices`` most like ``name``, best first, each at least ``cutoff`` alike (difflib's
    ratio: 1 is the same text, 0.6 about "one word misspelt")."""
    return difflib.get_close_matches(name, [str(c) for c in choices], n=n, cutoff=cutoff)


def did_you_mean(name: str, choices: Iterable[str], *, n: int = 3, cutoff: float = 0.5,
                 wording: str = " (did you mean {}?)") -> str:
    """The hint to append to a message: ``wording`` with the :func:`closest` names quoted and listed
    (``" (did you mean 'status', 'stratum'?)"``), or "" when none is close enough."""
    close = closest(name, choices, n=n, cutoff=cutoff)
    return wording.format(", ".join(repr(c) for c in close)) if close else ""
