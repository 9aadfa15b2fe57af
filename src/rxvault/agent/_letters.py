"""Printable enrollment letters (PDF): one page per patient, with the code and a QR code."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import segno
from fpdf import FPDF

from rxvault.agent._enroll import Enrollment

__all__ = ["write_letters"]

_MARGIN = 20.0


def _latin1(text: str) -> str:
    """The core PDF fonts speak Latin-1; anything else becomes '?' rather than failing."""
    return text.encode("latin-1", "replace").decode("latin-1")


def _qr(pdf: FPDF, data: str, x: float, y: float, size: float) -> None:
    qr = segno.make(data, error="m", micro=False)
    matrix = [list(row) for row in qr.matrix_iter(scale=1, border=4)]
    modules = len(matrix)
    cell = size / modules
    pdf.set_fill_color(0, 0, 0)
    for row, line in enumerate(matrix):
        col = 0
        while col < modules:
            if line[col]:
                start = col
                while col < modules and line[col]:
                    col += 1
                pdf.rect(x + start * cell, y + row * cell, (col - start) * cell, cell, style="F")
            else:
                col += 1


def write_letters(
    path: Path, enrollments: Sequence[Enrollment], *, pharmacy_name: str, portal_url: str
) -> None:
    pdf = FPDF(format="Letter", unit="mm")
    pdf.set_auto_page_break(auto=False)
    pdf.set_title(_latin1(f"{pharmacy_name}: your records online"))
    pdf.set_creator("rxvault")
    width = pdf.w - 2 * _MARGIN
    for e in enrollments:
        pdf.add_page()
        pdf.set_xy(_MARGIN, _MARGIN)
        pdf.set_font("Helvetica", "B", 18)
        pdf.multi_cell(width, 9, _latin1(pharmacy_name), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", 12)
        pdf.ln(4)
        greeting = f"Dear {e.display_name}," if e.display_name else "Dear patient,"
        pdf.set_x(_MARGIN)
        pdf.multi_cell(width, 6, _latin1(greeting), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)
        body = (
            "You can now see your prescriptions, allergies and refill dates online, in a private "
            "space that only you can open. Your records are locked with your own password "
            "before they leave the pharmacy: not even the website's operators can read them.\n\n"
            "To set up your access:\n"
            f"  1. Scan the square code below with your phone's camera, or go to {portal_url}\n"
            "  2. Enter your one-time code (if you scanned, it is already filled in).\n"
            "  3. Choose a user name and a password you will remember.\n\n"
            "Keep your password safe. If you forget it, nobody can recover it: ask us at the "
            "counter for a new letter, and your records will be there again the next day.\n\n"
            f"This code works once, until {e.expires_at:%B %d, %Y}. Do not share it."
        )
        pdf.set_x(_MARGIN)
        pdf.multi_cell(width, 6, _latin1(body), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(6)
        top = pdf.get_y()
        _qr(pdf, e.url, _MARGIN, top, 50)
        pdf.set_xy(_MARGIN + 60, top + 12)
        pdf.set_font("Helvetica", "", 11)
        pdf.cell(0, 6, "Your one-time code:", new_x="LMARGIN", new_y="NEXT")
        pdf.set_xy(_MARGIN + 60, top + 20)
        pdf.set_font("Courier", "B", 15)
        pdf.cell(0, 8, e.code_text, new_x="LMARGIN", new_y="NEXT")
        pdf.set_xy(_MARGIN, pdf.h - _MARGIN - 10)
        pdf.set_font("Helvetica", "", 9)
        pdf.multi_cell(
            width,
            4.5,
            _latin1(
                f"Patient reference: {e.patient_id}. Questions? Ask us at the counter. "
                "We will never ask you for your password."
            ),
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(path))
