"""The bundle's ``report.docx``: the report as an editable Word document (python-docx).

The same sections, in the same order, as the HTML: the study's title, a line saying which bundle it is,
one Heading 1 per section (so one per research aim), Heading 2 for the sections' sub-headings, the text
(key findings included) as ordinary paragraphs and bullet lists a researcher edits, every table as a Word
table (header row repeated on each page, numbers right-aligned) with its caption and notes, and every
chart as its 300-dpi PNG with the chart's alt text as the picture's description, its title and subtitle
as a caption above it, followed by its data table. Withheld cells are ``[c]`` with the footnote.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from impactstudy.pipeline.atomic import write_bytes
from impactstudy.report.tables import Table

WIDTH_CM = 16.0  # A4 less 2.5 cm margins


def _table(doc: Any, item: Table, footnote: str | None) -> None:
    from docx.enum.table import WD_TABLE_ALIGNMENT
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    doc.add_paragraph(item.caption, style="Caption")
    grid = doc.add_table(rows=1 + len(item.rows), cols=len(item.header))
    grid.style = "Table Grid"
    grid.alignment = WD_TABLE_ALIGNMENT.LEFT
    header = grid.rows[0]
    flag = OxmlElement("w:tblHeader")  # repeat the header row on every page
    flag.set(qn("w:val"), "true")
    header._tr.get_or_add_trPr().append(flag)
    for j, text in enumerate(item.header):
        cell = header.cells[j]
        cell.text = text
        for run in cell.paragraphs[0].runs:
            run.bold = True
    for i, row in enumerate(item.rows, start=1):
        cells = grid.rows[i].cells
        for j, text in enumerate(row):
            cells[j].text = text
            if item.numeric[j]:
                cells[j].paragraphs[0].alignment = WD_ALIGN_PARAGRAPH.RIGHT
    for note in item.notes:
        doc.add_paragraph(note)
    if footnote and item.withheld:
        doc.add_paragraph(footnote)


def _figure(doc: Any, block: dict[str, Any], png: Path, footnote: str | None) -> None:
    from docx.shared import Cm

    chart = block["chart"]
    doc.add_paragraph(chart.title, style="Caption")
    if chart.subtitle:
        doc.add_paragraph(chart.subtitle)
    picture = doc.add_picture(io.BytesIO(png.read_bytes()), width=Cm(WIDTH_CM))
    properties = picture._inline.docPr  # the picture's name and description: what a screen reader reads
    properties.set("descr", chart.alt)
    properties.set("title", chart.title)
    _table(doc, block["table"], footnote)


def write_document(path: Path, sections: Iterable[Any], title: str, banner: str, figures_dir: Path,
                   footnote: str | None) -> None:
    """Write the report's ``sections`` as ``path`` (.docx); the charts' PNGs are read from ``figures_dir``."""
    import docx
    from docx.shared import Pt

    doc = docx.Document()
    doc.core_properties.title = title
    doc.styles["Normal"].font.name = "Arial"
    doc.styles["Normal"].font.size = Pt(11)
    doc.add_heading(title, level=0)
    doc.add_paragraph(banner)
    for section in sections:
        doc.add_heading(section.title, level=1)
        if section.intro:
            doc.add_paragraph(section.intro)
        for block in section.blocks:
            kind = block["kind"]
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
                _table(doc, block["table"], footnote)
            elif kind == "figure":
                _figure(doc, block, figures_dir / f"{block['chart'].name}.png", footnote)
    if footnote:
        doc.add_paragraph(footnote)
    buffer = io.BytesIO()
    doc.save(buffer)
    write_bytes(path, buffer.getvalue())
