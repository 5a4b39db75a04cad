"""Notes as a PDF ready for letterhead (WeasyPrint): A4, one note per page, the top left blank for the printed heading.

Fonts come from the system (Debian: fonts-dejavu for Latin text, fonts-noto-cjk for Chinese); a
note in Chinese printed without a CJK font would show empty boxes, so that is refused.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

#: Room left at the top of the first page of each note for the printed letterhead.
LETTERHEAD_MM = 45
PAGE_CSS = f"""
@page {{ size: A4; margin: 25mm 22mm 22mm 25mm; }}
@page :first {{ margin-top: {LETTERHEAD_MM}mm; }}
body {{ font-family: "DejaVu Serif", "Noto Serif CJK SC", "Noto Sans CJK SC", serif; font-size: 11pt; }}
:lang(zh) body, body:lang(zh) {{ font-family: "Noto Serif CJK SC", "Noto Sans CJK SC", serif; }}
.note {{ page-break-after: always; }}
.note:last-child {{ page-break-after: auto; }}
.note + .note {{ padding-top: {LETTERHEAD_MM - 25}mm; }}
"""


class PdfUnavailable(RuntimeError):
    """WeasyPrint or a font the notes need is missing; the message says what to install."""


def _body(html: str) -> tuple[str, str]:
    """(language, the content of <body>) of a rendered note."""
    language = re.search(r'<html lang="([^"]+)"', html)
    body = re.search(r"<body[^>]*>(.*)</body>", html, re.DOTALL)
    return (language.group(1) if language else "en"), (body.group(1) if body else html)


def html_document(pages: list[str]) -> str:
    """One HTML document holding every note, each in its own page section with its language."""
    sections = []
    for html in pages:
        language, body = _body(html)
        sections.append(f'<section class="note" lang="{language}">{body}</section>')
    return ('<!DOCTYPE html><html><head><meta charset="utf-8"><style>' + PAGE_CSS + "</style></head><body>"
            + "".join(sections) + "</body></html>")


def _check_fonts(pages: list[str]) -> None:
    if not any('lang="zh"' in page for page in pages):
        return

    try:
        listed = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True, check=False).stdout
    except OSError:
        listed = ""
    if not listed.strip():
        raise PdfUnavailable("a note is in Chinese but no Chinese font is installed; install one "
                             "(Debian: apt-get install fonts-noto-cjk)")


def write_html_pages(path: Path, pages: list[str]) -> int:
    """Write the rendered HTML notes to ``path`` as one PDF; returns the number of pages. Raises PdfUnavailable."""
    try:
        import weasyprint  # optional at run time: its absence is a sentence, not a failed import
    except ImportError as error:        # pragma: no cover - a dependency of the package
        raise PdfUnavailable(f"WeasyPrint cannot be loaded ({error}); install the package's dependencies") from error
    _check_fonts(pages)
    document = weasyprint.HTML(string=html_document(pages)).render()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    document.write_pdf(str(path))
    return len(document.pages)


def write_notes(path: Path, rendered) -> int:
    """Write notifiers.letters.RenderedLetter notes to a PDF; returns the number of pages."""
    return write_html_pages(path, [r.html for r in rendered])
