"""The register of English upper-tier councils and the resolution of what surveys call them.

Shared below the stages: the link stage resolves each wave's council identifiers with it, the demo
generator samples councils from it. The code is in :mod:`impactstudy.councils.register`, the shipped
data beside it (``councils.csv``, ``council_aliases.csv``; see docs/councils.md); this module is its
public interface.
"""

from impactstudy.councils.register import (
    FUZZY_CUTOFF, FUZZY_MARGIN, RESULT_COLUMNS, councils_on, load_aliases, load_register, name_keys, normalise, resolve,
    resolve_to_csv, same_authority_code,
)

__all__ = ["FUZZY_CUTOFF", "FUZZY_MARGIN", "RESULT_COLUMNS", "councils_on", "load_aliases", "load_register",
           "name_keys", "normalise", "resolve", "resolve_to_csv", "same_authority_code"]
