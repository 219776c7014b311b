"""The demo's ``study.toml``: the packaged template ``demo_study.toml``, with the number of councils
in its title and any extra follow-up waves (the text is edited, not re-serialised, so comments stay).
"""

from __future__ import annotations

import re


from impactstudy.demo.model import MODEL


TEMPLATE = "demo_study.toml"  # beside this module


MAX_EXTRA_WAVES = 3


def _title(title: str, councils: int) -> str:
    """'… (synthetic demo)' → '… (synthetic demo, 6 councils)'; a title without brackets gets its own."""
    return f"{title[:-1]}, {councils} councils)" if title.endswith(")") else f"{title} ({councils} councils)"


def study_text(template: str, councils: int, extra_waves: int) -> str:
    """The demo's study.toml: the template with its title and extra follow-up waves edited in.

    Extra wave k (1-based) is ``follow_up_<k+1>``, a copy of the ``follow_up`` block with its id,
    label, file and fieldwork window (moved k years on) replaced; each effectiveness measure gets the
    same column as in ``follow_up`` and the new wave in ``reverse``. Comments are kept.
    """
    text = template
    if councils != 40:
        text = re.sub(r'^title = "(.*)"$', lambda m: f'title = "{_title(m.group(1), councils)}"', text, count=1,
                      flags=re.M)
    if not extra_waves:
        return text
    blocks = re.split(r"(?m)^(?=\[\[)", text)
    follow = next(i for i, b in enumerate(blocks) if b.startswith("[[waves]]") and re.search(r'^id = "follow_up"$', b, re.M))
    body, tail = re.match(r"(?s)(.*?\n)(\n*(?:#[^\n]*\n)*\n*)$", blocks[follow]).groups()
    ordinals, numbers = ("Second", "Third", "Fourth"), ("two", "three", "four")
    added = []
    for k in range(1, extra_waves + 1):
        block = body
        for key, value in (("id", f"follow_up_{k + 1}"),
                           ("label", f"{ordinals[k - 1]} follow-up (about {numbers[k - 1]} years after)"),
                           ("file", f"wave{3 + k}_follow_up_{k + 1}.sav")):
            block = re.sub(rf'^{key} = "[^"]*"', f'{key} = "{value}"', block, count=1, flags=re.M)
        for key in ("fieldwork_start", "fieldwork_end"):
            block = re.sub(rf"^{key} = (\d{{4}})", lambda m: f"{key} = {int(m.group(1)) + k}", block, count=1, flags=re.M)
        added.append(block)
    blocks[follow] = body + "\n" + "\n".join(added) + tail
    new_waves = [f"follow_up_{k + 1}" for k in range(1, extra_waves + 1)]
    for i, block in enumerate(blocks):
        name = re.search(r'^name = "([^"]+)"', block, re.M)
        if not (block.startswith("[[measures]]") and name and name.group(1) in MODEL.base):
            continue
        column = re.search(r'^columns = \{.*\bfollow_up = ("[^"]*").*\}$', block, re.M)
        if not column:
            raise ValueError(f"template measure {name.group(1)}: expected an inline 'columns' table with follow_up")
        extra = "".join(f", {w} = {column.group(1)}" for w in new_waves)
        block = re.sub(r"^(columns = \{.*?) \}$", lambda m: f"{m.group(1)}{extra} }}", block, count=1, flags=re.M)
        block = re.sub(r"^(reverse = \[.*?)\]$", lambda m: m.group(1) + "".join(f', "{w}"' for w in new_waves) + "]",
                       block, count=1, flags=re.M)
        blocks[i] = block
    return "".join(blocks)
