"""The bundle's ``report.docx``: the report as an editable Word document (python-docx).

The same sections, in the same order, as the HTML: the study's title, a line saying which bundle it is,
one Heading 1 per section (so one per research aim), Heading 2 for the sections' sub-headings, the text
(key findings included) as ordinary paragraphs and bullet lists a researcher edits, every table as a Word
table (header row repeated on each page, numbers right-aligned, no column narrower than its longest
word: a table too wide for a portrait page gets a landscape one, and one too wide for that is split by
columns, :func:`pages`) with its caption and notes, and every
chart as its 300-dpi PNG with the chart's alt text as the picture's description, its title and subtitle
as a caption above it (so the picture is the chart without its title block: the title appears once),
followed by its data table. Withheld cells are ``[c]`` with the footnote.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path
from dataclasses import replace
from typing import Any

from impactstudy.pipeline.atomic import write_bytes
from impactstudy.report.tables import Table

WIDTH_CM = 16.0  # A4 portrait less 2.5 cm margins
LANDSCAPE_CM = 24.7  # A4 landscape less 2.5 cm margins: the page of a table too wide for portrait
TABLE_STYLE = "Table text"  # the paragraph style of table cells: 9-point
SMALL_STYLE = "Table text small"  # 8-point, for a table a little too wide for portrait at 9 points
SMALL = 8 / 9  # its characters' width relative to 9-point


CHAR_CM, BOLD_CM, PADDING_CM = 0.18, 0.21, 0.45  # a 9-point Arial character, bold (headers), a cell's side margins
LONGEST_WORD = 30  # characters: a longer "word" (a file hash, a path) may break; every other word fits its column


def least_widths(item: Table, scale: float = 1.0) -> list[float]:
    """Each column's narrowest width in cm: its longest word (of the cells, or bold of the header) on one
    line, at 9 points (``scale`` for a smaller size)."""
    out = []
    for j, head in enumerate(item.header):
        word = max((len(w) for row in item.rows for w in row[j].split()), default=1)
        heading = max((len(w) for w in head.split()), default=1)
        out.append(PADDING_CM + scale * max(CHAR_CM * min(word, LONGEST_WORD), BOLD_CM * min(heading, LONGEST_WORD)))
    return out


def column_widths(item: Table, width: float = WIDTH_CM, scale: float = 1.0) -> list[float]:
    """Column widths in cm filling ``width``: each column at least as wide as its longest word and the
    rest of the page shared by how much more its longest cell (up to 40 characters) wants, so numbers
    do not break mid-figure and labels get the room (Word and LibreOffice otherwise make every column
    equally wide). Only a table whose words cannot fit ``width`` at all (:func:`pages` splits those) is
    scaled down."""
    least = least_widths(item, scale)
    wanted = [max(m, PADDING_CM + scale * CHAR_CM * min(max(len(c) for c in [head, *(row[j] for row in item.rows)]), 40))
              for j, (head, m) in enumerate(zip(item.header, least, strict=True))]
    if sum(least) >= width:
        return [width * w / sum(least) for w in least]
    extra = [w - m for w, m in zip(wanted, least, strict=True)]
    if sum(wanted) <= width or not sum(extra):
        return [width * w / sum(wanted) for w in wanted]
    room = width - sum(least)
    return [m + room * e / sum(extra) for m, e in zip(least, extra, strict=True)]


def pages(item: Table) -> list[tuple[Table, bool, bool]]:
    """How a table goes into the document: ``(table, landscape, small)`` parts.

    A table whose longest words fit the portrait width stays on a portrait page at 9 points, or at 8
    points when that is what it takes; one that needs more goes on a landscape page; one too wide even
    for that is split by columns into parts that each fit a landscape page, each repeating the first
    column (the row labels) and saying which part it is.
    """
    least = least_widths(item)
    if sum(least) <= WIDTH_CM:
        return [(item, False, False)]
    if sum(least_widths(item, SMALL)) <= WIDTH_CM:
        return [(item, False, True)]
    if sum(least) <= LANDSCAPE_CM or len(item.header) < 3:
        return [(item, True, False)]
    groups: list[list[int]] = [[]]
    for j in range(1, len(item.header)):
        if groups[-1] and least[0] + sum(least[k] for k in groups[-1]) + least[j] > LANDSCAPE_CM:
            groups.append([])
        groups[-1].append(j)
    parts = []
    for n, group in enumerate(groups, start=1):
        keep = [0, *group]
        parts.append((replace(item, id=f"{item.id}-part{n}",
                              caption=f"{item.caption} (part {n} of {len(groups)})",
                              header=tuple(item.header[k] for k in keep),
                              rows=tuple(tuple(row[k] for k in keep) for row in item.rows),
                              numeric=tuple(item.numeric[k] for k in keep),
                              notes=item.notes if n == len(groups) else ()), True, False))
    return parts


class _Pages:
    """The document's page orientation as blocks are added: a new section only where it changes."""

    def __init__(self, doc: Any) -> None:
        self.doc, self.landscape = doc, False

    def turn(self, landscape: bool) -> None:
        from docx.enum.section import WD_ORIENT, WD_SECTION

        if landscape == self.landscape:
            return
        section = self.doc.add_section(WD_SECTION.NEW_PAGE)
        width, height = section.page_width, section.page_height
        section.orientation = WD_ORIENT.LANDSCAPE if landscape else WD_ORIENT.PORTRAIT
        if (width < height) == landscape:  # the new section starts with the previous one's size: swap it
            section.page_width, section.page_height = height, width
        self.landscape = landscape


def _tables(doc: Any, item: Table, footnote: str | None, paging: _Pages) -> None:
    """A table on pages of the orientation it needs (:func:`pages`), then back to portrait for what follows."""
    for part, landscape, small in pages(item):
        paging.turn(landscape)
        _table(doc, part, footnote, LANDSCAPE_CM if landscape else WIDTH_CM, small)


def _table(doc: Any, item: Table, footnote: str | None, width: float = WIDTH_CM, small: bool = False) -> None:
    from docx.enum.table import WD_TABLE_ALIGNMENT
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn
    from docx.shared import Cm

    doc.add_paragraph(item.caption, style="Caption")
    grid = doc.add_table(rows=1 + len(item.rows), cols=len(item.header))
    grid.style = "Table Grid"
    grid.alignment = WD_TABLE_ALIGNMENT.LEFT
    grid.autofit = False
    widths = column_widths(item, width, SMALL if small else 1.0)
    for column, width in zip(grid.columns, widths, strict=True):
        column.width = Cm(width)  # the table grid, which LibreOffice follows; Word follows the cells'
        for cell in column.cells:
            cell.width = Cm(width)
    header = grid.rows[0]
    flag = OxmlElement("w:tblHeader")  # repeat the header row on every page
    flag.set(qn("w:val"), "true")
    header._tr.get_or_add_trPr().append(flag)
    style = doc.styles[SMALL_STYLE if small else TABLE_STYLE]
    for j, text in enumerate(item.header):
        cell = header.cells[j]
        cell.text = text
        cell.paragraphs[0].style = style
        for run in cell.paragraphs[0].runs:
            run.bold = True
    for i, row in enumerate(item.rows, start=1):
        cells = grid.rows[i].cells
        for j, text in enumerate(row):
            cells[j].text = text
            cells[j].paragraphs[0].style = style
            if item.numeric[j]:
                cells[j].paragraphs[0].alignment = WD_ALIGN_PARAGRAPH.RIGHT
    for note in item.notes:
        doc.add_paragraph(note)
    if footnote and item.withheld:
        doc.add_paragraph(footnote)


def _figure(doc: Any, block: dict[str, Any], footnote: str | None, paging: _Pages) -> None:
    from docx.shared import Cm

    paging.turn(False)
    chart = block["chart"]
    heading = [doc.add_paragraph(chart.title, style="Caption")]
    if chart.subtitle:
        heading.append(doc.add_paragraph(chart.subtitle))
    for paragraph in heading:  # the caption stays on the page of its picture
        paragraph.paragraph_format.keep_with_next = True
    # the picture without its title block: the caption above is the title (the exported PNG keeps it)
    picture = doc.add_picture(io.BytesIO(chart.body_png), width=Cm(WIDTH_CM))
    properties = picture._inline.docPr  # the picture's name and description: what a screen reader reads
    properties.set("descr", chart.alt)
    properties.set("title", chart.title)
    _tables(doc, block["table"], footnote, paging)


def write_document(path: Path, sections: Iterable[Any], title: str, banner: str, footnote: str | None) -> None:
    """Write the report's ``sections`` as ``path`` (.docx), each chart as its PNG without the title block."""
    import docx
    from docx.enum.style import WD_STYLE_TYPE
    from docx.shared import Cm, Pt

    doc = docx.Document()
    doc.core_properties.title = title
    page = doc.sections[0]  # A4 with 2.5 cm margins, which WIDTH_CM and LANDSCAPE_CM assume (the template is Letter)
    page.page_width, page.page_height = Cm(21.0), Cm(29.7)
    page.left_margin = page.right_margin = page.top_margin = page.bottom_margin = Cm(2.5)
    doc.styles["Normal"].font.name = "Arial"
    doc.styles["Normal"].font.size = Pt(11)
    table_text = doc.styles.add_style(TABLE_STYLE, WD_STYLE_TYPE.PARAGRAPH)  # small, so wide tables fit the page
    table_text.base_style = doc.styles["Normal"]
    table_text.font.size = Pt(9)
    table_text.paragraph_format.space_after = Pt(0)
    small_text = doc.styles.add_style(SMALL_STYLE, WD_STYLE_TYPE.PARAGRAPH)
    small_text.base_style = table_text
    small_text.font.size = Pt(8)
    doc.add_heading(title, level=0)
    doc.add_paragraph(banner)
    paging = _Pages(doc)
    for section in sections:
        paging.turn(False)
        doc.add_heading(section.title, level=1)
        if section.intro:
            doc.add_paragraph(section.intro)
        for block in section.blocks:
            kind = block["kind"]
            if kind not in ("table", "figure"):
                paging.turn(False)
            if kind in ("p", "callout"):
                doc.add_paragraph(block["text"])
            elif kind == "h3":
                doc.add_heading(block["text"], level=2)
            elif kind == "ul":
                for item in block["items"]:
                    doc.add_paragraph(item, style="List Bullet")
            elif kind == "quotes":
                for quote in block["items"]:
                    doc.add_paragraph(quote["text"], style="Quote")
                    doc.add_paragraph(quote["who"])
            elif kind == "table":
                _tables(doc, block["table"], footnote, paging)
            elif kind == "figure":
                _figure(doc, block, footnote, paging)
    if footnote:
        paging.turn(False)
        doc.add_paragraph(footnote)
    buffer = io.BytesIO()
    doc.save(buffer)
    write_bytes(path, buffer.getvalue())
