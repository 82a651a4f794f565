"""The font documents embed on a machine without Debian's fonts (issue 14: `make demo` on a
fresh machine still makes PDFs): the Noto Serif SC weight `make web-assets` copies from npm
draws a document whose text reads back. Run in a child process, since a process registers
its font once."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cityloop.documents import render

NOTO = render.FONT_CANDIDATES[-1][0]
CHILD = """
from cityloop.documents import render
data = render.render_pdf(
    issuer_name="厦门市思明区城市管理局",
    title="行政处罚决定书",
    number="厦思城管罚决字〔2026〕第1号",
    text="当事人：张某\\n> 2026年8月27日",
)
print(render.font_path())
print(render.pdf_text(data))
"""


def test_the_npm_fallback_font_makes_readable_documents():
    if not NOTO.exists():
        if os.environ.get("CI"):
            raise AssertionError(f"{NOTO} is missing: `make web-assets` copies it")
        pytest.skip("run `make web-assets` for the fallback font")
    result = subprocess.run(
        [sys.executable, "-c", CHILD],
        env={**os.environ, "CITYLOOP_DOCUMENT_FONT": str(NOTO)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = result.stdout.splitlines()
    assert lines[0] == str(NOTO)
    text = "\n".join(lines[1:])
    expected_lines = (
        "行政处罚决定书",
        "厦思城管罚决字〔2026〕第1号",
        "当事人：张某",
        "2026年8月27日",
    )
    for expected in expected_lines:
        assert expected in text, text


def test_a_configured_font_that_is_missing_is_named():
    result = subprocess.run(
        [sys.executable, "-c", "from cityloop.documents import render; render.font_path()"],
        env={**os.environ, "CITYLOOP_DOCUMENT_FONT": "/nonexistent/font.ttf"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "/nonexistent/font.ttf" in result.stderr
