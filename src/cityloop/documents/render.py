"""Templates and PDFs: the placeholders a template may use, filling them from a context, and
drawing the page with an embedded Chinese font. Pure: no database.

A template is plain text, one paragraph a line. `{name}` is a placeholder the context must
give; `{name?}` one that may be missing (left blank, to be filled by hand on the printed form);
`{{` and `}}` are literal braces. A line starting with `> ` is set flush right (the issuer and
the date at the foot); an empty line is a gap. The generator draws the issuer's name, the
title and the number at the head of every document, so templates do not repeat them.
"""

from __future__ import annotations

import io
import string
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from cityloop.errors import ValidationFailed

# Every placeholder a template may name, with the label the admin page shows. The common keys
# come first (every enforcement flow's context has them); then the keys of particular kinds;
# then the ones the generator fills itself (GENERATED).
FIELDS: dict[str, str] = {
    "party_name": "当事人",
    "party_address": "当事人地址",
    "facts": "违法事实 / 事项",
    "violation_name": "违法行为（案由）",
    "legal_basis": "违法依据",
    "penalty_basis": "处罚依据",
    "penalty_text": "处罚内容",
    "fine_yuan": "罚款金额（元）",
    "officers": "执法人员（姓名 执法证号）",
    "place": "地点",
    "case_number": "案号",
    "date": "日期",
    "source": "案件来源",
    "opinion": "承办人意见",
    "started_at": "开始时间",
    "ended_at": "结束时间",
    "record_text": "笔录内容",
    "deadline": "期限",
    "rectification": "改正要求",
    "statement_deadline": "陈述、申辩截止日期",
    "hearing_deadline": "听证申请截止日期",
    "hearing_time": "听证时间",
    "hearing_place": "听证地点",
    "host": "听证主持人",
    "payment_text": "缴款方式",
    "remedy_text": "救济途径（复议、诉讼的机关和期限）",
    "delivered_documents": "送达文书",
    "delivery_method": "送达方式",
    "delivered_at": "送达时间",
    "note": "备注",
    "result": "执行情况",
    "recipient_unit": "受文单位",
    "requirement": "要求",
    "content": "正文",
    "issuer_name": "发文机关（自动）",
    "number": "文书编号（自动）",
    "title": "文书名称（自动）",
}
GENERATED = frozenset({"issuer_name", "number", "title"})

_FORMATTER = string.Formatter()


@dataclass(frozen=True)
class Placeholder:
    name: str
    optional: bool


def _pieces(body: str) -> list[tuple[str, Placeholder | None]]:
    """The template as (literal text, placeholder after it) pairs; ValidationFailed (field
    "body") naming the first placeholder that is not allowed."""
    try:
        parsed = list(_FORMATTER.parse(body))
    except ValueError as exc:  # an unmatched brace
        raise ValidationFailed(
            f"the template has a stray brace ({exc}); write {{{{ or }}}} for a literal one",
            field="body",
        ) from exc
    pieces: list[tuple[str, Placeholder | None]] = []
    for literal, field_name, spec, conversion in parsed:
        if field_name is None:
            pieces.append((literal, None))
            continue
        optional = field_name.endswith("?")
        name = field_name[:-1] if optional else field_name
        # Plain names only: attribute or index access ({x.__class__}) and format specs are
        # refused, since administrators edit these texts.
        if spec or conversion or name not in FIELDS:
            raise ValidationFailed(
                f"unknown placeholder {{{field_name}}} in the template; known: "
                + ", ".join(sorted(FIELDS)),
                field="body",
            )
        pieces.append((literal, Placeholder(name, optional)))
    return pieces


def check_template(body: str) -> list[Placeholder]:
    """The placeholders a template uses, in order and without repeats; ValidationFailed when
    one is unknown."""
    seen: dict[str, Placeholder] = {}
    for _literal, holder in _pieces(body):
        if holder is not None and holder.name not in seen:
            seen[holder.name] = holder
        elif holder is not None and not holder.optional:
            seen[holder.name] = holder  # required anywhere makes it required
    return list(seen.values())


def format_value(value: Any) -> str:
    """A context value as the document prints it."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, (list, tuple)):
        return "、".join(format_value(item) for item in value)
    if isinstance(value, datetime):
        return f"{value.year}年{value.month}月{value.day}日 {value.hour:02d}时{value.minute:02d}分"
    if isinstance(value, date):
        return f"{value.year}年{value.month}月{value.day}日"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value == value.to_integral() else str(value)
    return str(value)


def fill(body: str, context: Mapping[str, Any]) -> str:
    """The template's text with its placeholders filled. A required placeholder without a
    value (missing or None) → ValidationFailed naming it."""
    out: list[str] = []
    for literal, holder in _pieces(body):
        out.append(literal)
        if holder is None:
            continue
        value = context.get(holder.name)
        if value is None:
            if holder.optional:
                continue
            raise ValidationFailed(
                f"{holder.name} ({FIELDS[holder.name]}) is needed by this document's template",
                field=holder.name,
            )
        out.append(format_value(value))
    return "".join(out)


# -- the PDF ---------------------------------------------------------------------------------

_PACKAGE = Path(__file__).resolve().parent
# Debian's fonts-wqy-microhei; else the Noto Serif SC weight scripts/install_web_assets.sh
# copies from npm into the web assets.
FONT_CANDIDATES: tuple[tuple[Path, int], ...] = (
    (Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"), 0),
    (_PACKAGE.parent / "web" / "static" / "vendor" / "fonts" / "NotoSerifSC_400Regular.ttf", 0),
)
FONT_NAME = "CityloopCJK"
_font_lock = threading.Lock()
_font_path: Path | None = None


def font_path() -> Path:
    """The font file documents embed (registered with reportlab on first use)."""
    global _font_path
    if _font_path is not None:
        return _font_path
    with _font_lock:
        if _font_path is None:
            from reportlab.pdfbase import pdfmetrics
            from reportlab.pdfbase.ttfonts import TTFont

            for path, index in FONT_CANDIDATES:
                if path.exists():
                    pdfmetrics.registerFont(TTFont(FONT_NAME, str(path), subfontIndex=index))
                    _font_path = path
                    break
            else:
                raise RuntimeError(
                    "no Chinese font for documents: install Debian's fonts-wqy-microhei or run "
                    "`make web-assets` (copies Noto Serif SC from npm)"
                )
    return _font_path


_PAGE_W, _PAGE_H = 595.2756, 841.8898  # A4 in points
_MARGIN_X, _MARGIN_TOP, _MARGIN_BOTTOM = 72.0, 64.0, 60.0
_BODY_SIZE, _LEADING = 12.0, 21.0
# Characters that may not begin a line (避头点): they stay at the end of the line before.
_NO_LINE_START = set("，。、；：？！）》」』】〕,.;:?!)%")


def _wrap(text: str, width: float, size: float) -> list[str]:
    from reportlab.pdfbase.pdfmetrics import stringWidth

    lines: list[str] = []
    current: list[str] = []
    used = 0.0
    for char in text:
        char_width = stringWidth(char, FONT_NAME, size)
        if current and used + char_width > width and char not in _NO_LINE_START:
            lines.append("".join(current))
            current, used = [], 0.0
        current.append(char)
        used += char_width
    lines.append("".join(current))
    return lines


def render_pdf(*, issuer_name: str, title: str, number: str, text: str) -> bytes:
    """An A4 PDF of the filled template under its head (issuer, title, number). The same
    input gives the same bytes (reportlab's invariant mode: no clock, no random id)."""
    from reportlab.pdfgen.canvas import Canvas

    font_path()
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=(_PAGE_W, _PAGE_H), invariant=1, pageCompression=1)
    canvas.setTitle(f"{title} {number}")
    canvas.setAuthor(issuer_name)
    width = _PAGE_W - 2 * _MARGIN_X
    page = 1

    def head() -> float:
        y = _PAGE_H - _MARGIN_TOP
        canvas.setFont(FONT_NAME, 15)
        canvas.drawCentredString(_PAGE_W / 2, y, issuer_name)
        y -= 30
        canvas.setFont(FONT_NAME, 20)
        canvas.drawCentredString(_PAGE_W / 2, y, title)
        y -= 24
        canvas.setFont(FONT_NAME, 11)
        canvas.drawRightString(_PAGE_W - _MARGIN_X, y, number)
        y -= 10
        canvas.setLineWidth(0.6)
        canvas.line(_MARGIN_X, y, _PAGE_W - _MARGIN_X, y)
        return y - _LEADING

    def foot() -> None:
        canvas.setFont(FONT_NAME, 9)
        canvas.drawCentredString(_PAGE_W / 2, _MARGIN_BOTTOM / 2, f"{number}　第{page}页")

    y = head()
    for paragraph in text.split("\n"):
        right = paragraph.startswith("> ")
        if right:
            paragraph = paragraph[2:]
        for line in _wrap(paragraph, width, _BODY_SIZE) if paragraph else [""]:
            if y < _MARGIN_BOTTOM + _LEADING:
                foot()
                canvas.showPage()
                page += 1
                y = head()
            canvas.setFont(FONT_NAME, _BODY_SIZE)
            if right:
                canvas.drawRightString(_PAGE_W - _MARGIN_X, y, line)
            else:
                canvas.drawString(_MARGIN_X, y, line)
            y -= _LEADING
    foot()
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def pdf_text(data: bytes) -> str:
    """The text of a PDF read back with pypdf, pages joined by newlines."""
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() or "" for page in reader.pages)
