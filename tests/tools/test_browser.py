"""tools/browser.py against the real headless Chromium: the PDF read back by
pypdf (an independent reader), the PNG's size read from its own header, the
DOM after a script changed it. Skipped, with the reason, without Chromium."""

from __future__ import annotations

import stat
import struct
from io import BytesIO
from pathlib import Path

import pytest

from tools import browser

pytestmark = pytest.mark.skipif(
    browser.find_chromium() is None,
    reason="Chromium is not installed (Debian: apt-get install chromium): "
           "tools/browser.py cannot be checked here")

PAGE = """<!doctype html><html lang="sv"><head><meta charset="utf-8"><title>t</title>
<style>@page { size: A4; margin: 20mm; }</style></head>
<body><h1>Kvittens Åsa Öberg</h1><p id="p">före</p>
<img src="http://example.invalid/x.png" alt="">
<script>document.getElementById("p").textContent = "efter";</script></body></html>"""


def test_html_to_pdf_prints_the_page(tmp_path: Path) -> None:
    from pypdf import PdfReader
    out = tmp_path / "k.pdf"
    browser.html_to_pdf(PAGE, out)
    reader = PdfReader(BytesIO(out.read_bytes()))
    assert len(reader.pages) == 1
    text = reader.pages[0].extract_text()
    assert "Kvittens Åsa Öberg" in text
    box = reader.pages[0].mediabox  # A4 is 595 x 842 points
    assert round(float(box.width)) == 595 and round(float(box.height)) == 842
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert not list(tmp_path.glob("*.new"))


def test_screenshot_is_a_png_of_the_asked_size(tmp_path: Path) -> None:
    out = tmp_path / "p.png"
    browser.screenshot(PAGE, out, width=640, height=480)
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    assert struct.unpack(">II", data[16:24]) == (640, 480)


def test_dump_dom_is_the_rendered_dom() -> None:
    dom = browser.dump_dom(PAGE)
    assert '<p id="p">efter</p>' in dom and "Åsa Öberg" in dom


def test_errors_are_browser_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(browser.BrowserError, match="cannot write"):
        browser.html_to_pdf(PAGE, tmp_path / "no-such-dir" / "k.pdf")
    with pytest.raises(browser.BrowserError, match="1 to 10000"):
        browser.screenshot(PAGE, tmp_path / "p.png", width=0)
    monkeypatch.setenv("CHROMIUM", str(tmp_path / "not-there"))
    assert browser.find_chromium() is None
    with pytest.raises(browser.BrowserError, match="not installed"):
        browser.dump_dom(PAGE)
    # A binary that fails: its exit status is told.
    fake = tmp_path / "fake-chromium"
    fake.write_text("#!/bin/sh\necho 'ERROR: no display' >&2\nexit 3\n")
    fake.chmod(0o700)
    monkeypatch.setenv("CHROMIUM", str(fake))
    with pytest.raises(browser.BrowserError, match="exit status 3.*no display"):
        browser.html_to_pdf(PAGE, tmp_path / "k.pdf")
    assert not (tmp_path / "k.pdf").exists()
