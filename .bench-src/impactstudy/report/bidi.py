"""Unicode bidirectional controls taken out of text the report shows.

A right-to-left override (U+202E) or isolate in a label, an answer or a council name typed into a survey
makes a page or a figure display text in an order other than the one it is stored in ("Trojan source"):
a reader could be shown a different number or name than the one the data hold. The report removes
them from every page (the templates' ``finalize``) and every SVG figure; the data files keep the
text as received.
"""

from __future__ import annotations

BIDI_CONTROLS = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_TABLE = str.maketrans("", "", BIDI_CONTROLS)


def neutralise_bidi(text: str) -> str:
    """``text`` without its bidirectional control characters (a subclass such as Markup is kept)."""
    cleaned = str.translate(text, _TABLE)
    if cleaned == text:
        return text
    return cleaned if type(text) is str else type(text)(cleaned)
