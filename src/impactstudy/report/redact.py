"""Taking names out of free text before it is quoted in public: councils (every name and alias the
register knows, and the study's own aliases) and the study's list of other names (people, places,
services: ``[report] redact_names``).

Matching is on words, folded as the register folds names (case, accents, ``&``/``and``, ``St.``/
``Saint``, punctuation and hyphens): ``"stoke-on-trent"``, ``"Stoke on Trent"`` and ``"STOKE ON
TRENT"`` are the same name, and a name is only found as whole words (``Kent`` in ``Kentish`` is not).
The longest name starting at a word wins (``Bath and North East Somerset`` before ``Bath``).

Names are matched as names. A handful of the register's one-word names and aliases are also ordinary
English words (:data:`ORDINARY_WORDS`: "reading", "bath", "hull", "stoke" …); such a word written all in
lower case is the word, not the council, and is left alone unless the words around it make it a council
("bury council", "borough of harrow"). Every other occurrence is taken out: the
word capitalised or in capitals anywhere ("Reading", "READING"), so also at the start of a sentence,
where "Reading the report helped" cannot be told from the council and the quote errs on the side of
removing; a name of several words however it is written ("stoke on trent"); and a one-word name that is
no ordinary word however it is written ("wigan"). The study's own names (``redact_names``: people,
places, schools the researcher listed) are taken out however they are written.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

COUNCIL = "[council]"
NAME = "[name]"
_WORD = re.compile(r"\w+|&")
_SUBS = {"&": "and", "saint": "st"}
_MARK = re.escape(COUNCIL)
# the register's one-word names and aliases (folded) that are also ordinary English words: written all in lower
# case they are left in a quote (tests/report/test_themes_report.py holds each to a one-word register key)
_COUNCIL_AFTER = frozenset({"council", "borough", "county", "city", "metropolitan", "district", "la"})
_COUNCIL_BEFORE = frozenset({"city", "county", "borough"})
ORDINARY_WORDS = frozenset({"bath", "bucks", "bury", "derby", "harrow", "havering", "hull", "reading", "slough",
                            "staffs", "stoke", "wilts"})
# the words around a council's name that the register's keys leave out ("Bristol, City of"; "London Borough of
# Camden"; "Kent County Council"), taken out with it
_COUNCIL_WORDS_BEFORE = re.compile(r"\b(?:(?:the\s+)?(?:royal\s+|london\s+)?(?:city|county|borough)\s+of\s+)" + _MARK,
                                   re.IGNORECASE)
_COUNCIL_WORDS_AFTER = re.compile(_MARK + r"(?:,\s*(?:city|county)\s+of\b)?(?:\s+(?:city|county|metropolitan\s+borough|"
                                  r"borough|district)?\s*council\b)?", re.IGNORECASE)


def fold(word: str) -> str:
    """One word folded for matching: no accents, case folded, ``&`` → ``and``, ``saint`` → ``st``."""
    text = unicodedata.normalize("NFKD", word)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    return _SUBS.get(text, text)


def _key(name: str) -> tuple[str, ...]:
    return tuple(fold(w) for w in _WORD.findall(name.replace("_", " ")))


@dataclass(frozen=True)
class Redactor:
    """Finds the names of ``councils`` (register keys, :func:`impactstudy.councils.name_keys`) and of
    ``others`` (the study's list) in text and replaces each with :data:`COUNCIL` or :data:`NAME`."""

    names: dict[tuple[str, ...], str]
    longest: int

    @classmethod
    def create(cls, councils: Iterable[str], others: Iterable[str] = ()) -> Redactor:
        names: dict[tuple[str, ...], str] = {}
        for name in councils:
            if key := _key(name):
                names[key] = COUNCIL
        for name in others:
            if key := _key(name):
                names[key] = NAME
        return cls(names, max((len(k) for k in names), default=0))

    def redact(self, text: str) -> tuple[str, int]:
        """``text`` with every name replaced, and how many were (the rule: the module docstring)."""
        words = [(m.start(), m.end(), fold(m.group())) for m in _WORD.finditer(text)]
        out, last, i, found = [], 0, 0, 0
        while i < len(words):
            for n in range(min(self.longest, len(words) - i), 0, -1):
                mark = self.names.get(tuple(w for _, _, w in words[i:i + n]))
                if mark == COUNCIL and n == 1 and _ordinary(text[words[i][0]:words[i][1]]) and not _councilish(words, i):
                    mark = None  # "reading" the word, not Reading the council
                if mark is not None:
                    out.append(text[last:words[i][0]] + mark)
                    last, i, found = words[i + n - 1][1], i + n, found + 1
                    break
            else:
                i += 1
        out.append(text[last:])
        return _COUNCIL_WORDS_AFTER.sub(COUNCIL, _COUNCIL_WORDS_BEFORE.sub(COUNCIL, "".join(out))), found


def _councilish(words: list[tuple[int, int, str]], i: int) -> bool:
    """True when the words around word ``i`` make it a council's name ("bury council", "borough of harrow")."""
    after = words[i + 1][2] if i + 1 < len(words) else ""
    before = tuple(w for _, _, w in words[max(i - 2, 0):i])
    return after in _COUNCIL_AFTER or (len(before) == 2 and before[1] == "of" and before[0] in _COUNCIL_BEFORE)


def _ordinary(word: str) -> bool:
    """True for an ordinary English word among the register's names, written all in lower case."""
    return word.islower() and fold(word) in ORDINARY_WORDS


__all__ = ["COUNCIL", "NAME", "ORDINARY_WORDS", "Redactor", "fold"]
