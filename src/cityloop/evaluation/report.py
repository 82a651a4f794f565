"""The evaluation workbook (考核报表): one sheet per evaluated kind, Chinese headers, ranks and
grades, the published rates with 环比/同比, and a sheet saying how each figure is counted."""

from __future__ import annotations

import io
from typing import IO, Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from cityloop.evaluation import service
from cityloop.evaluation.periods import Period

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_FORMATS = {"rate": "0.00%", "score": "0.00", "int": "0"}
_HEADER_FONT = Font(bold=True)
_HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
_TITLE_FONT = Font(bold=True, size=14)

NOTES = [
    ("应结案数", "期内结案的案件，加上处置期限落在期内、期末仍未结案（未回退、未挂账）的案件"),
    ("结案率", "结案数 ÷ 应结案数"),
    ("按期结案率", "按期结案数（结案事件 on_time）÷ 应结案数"),
    ("处置率 / 按期处置率", "应结案案件中期末前已反馈处置结果的 / 在处置期限内反馈的，÷ 应结案数"),
    ("返工率 / 延期率", "期内返工 / 批准延期次数 ÷ 应结案数"),
    ("立案率", "期内上报案件中：立案数 ÷（立案数 + 不予受理数）；合并的重复案件不计"),
    ("有效反馈率", "期内处置反馈中，经审核通过的 ÷ 已审核的"),
    ("满意率", "期内回访中满意的 ÷ 回访数"),
    ("721", "期内结案案件按最后一次处置反馈的方式（服务 / 管理 / 执法）计"),
    ("有效上报", "监督员自行上报、后来立案的案件"),
    ("漏报", "责任区域内立案的公众举报（含热线、网站、微信等渠道）；漏报率 = 漏报数 ÷ 区域立案数"),
    (
        "按时核实 / 核查",
        "派核实（审核通过）后在环节时限（工作时间）内完成核实（核查）；中心撤回的不计",
    ),
    ("按时立案 / 派遣 / 结案", "该环节从进入到办结未超过环节时限（工作时间，节假日不计）"),
    ("准确派遣率", "（派遣数 − 被专业部门回退的派遣）÷ 派遣数"),
    (
        "综合指标值",
        "各项分值按权重加权（可在评价模型中修改）；无数据的指标不计并按比例放大其余权重",
    ),
    ("扣分", "超期未结案每件、超期结案每件按评价模型扣分，设上限"),
    ("等级", "A 90–100，B 75–90，C 60–75，D 40–60，E 40 以下（可修改）"),
]


def report_filename(period: Period) -> str:
    return f"evaluation-{period.key}.xlsx"


def _cell(ws: WriteOnlyWorksheet, value: Any, fmt: str | None = None, header: bool = False) -> Any:
    cell = WriteOnlyCell(ws, value=value)
    if header:
        cell.font, cell.fill = _HEADER_FONT, _HEADER_FILL
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
    elif fmt in _FORMATS and value is not None:
        cell.number_format = _FORMATS[fmt]
    return cell


def _title(ws: WriteOnlyWorksheet, text: str) -> None:
    cell = WriteOnlyCell(ws, value=text)
    cell.font = _TITLE_FONT
    ws.append([cell])


def _table(
    wb: Workbook, title: str, heading: str, columns: list[service.Col], rows: list[dict[str, Any]]
) -> None:
    ws = wb.create_sheet(title)
    for index, (_key, _label, _en, fmt) in enumerate(columns):
        letter = _column_letter(index)
        ws.column_dimensions[letter].width = 26 if fmt == "text" else 13
    _title(ws, heading)
    ws.append([_cell(ws, label, header=True) for _key, label, _en, _fmt in columns])
    styled = [fmt in ("rate", "score") for _key, _label, _en, fmt in columns]
    for row in rows:
        # openpyxl spends ~10 µs a cell; only rates and scores need a number format.
        ws.append(
            [
                _cell(ws, row.get(key), fmt) if style else row.get(key)
                for (key, _label, _en, fmt), style in zip(columns, styled, strict=True)
            ]
        )


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def write_workbook(ctx: service.Context, out: IO[bytes]) -> None:
    period = ctx.period
    heading = f"{period.label} 综合评价"
    wb = Workbook(write_only=True)

    rates = service.rates(ctx, compare=True)
    ws = wb.create_sheet("综合指标")
    ws.column_dimensions["A"].width = 22
    for letter in "BCDEF":
        ws.column_dimensions[letter].width = 16
    _title(ws, f"{heading}（统计至 {ctx.window.end.astimezone(ctx.calendar.tz):%Y-%m-%d %H:%M}）")
    previous = rates["periods"]["previous"]["label"]
    last_year = rates["periods"]["last_year"]["label"]
    header = [
        "指标",
        period.label,
        f"环比（{previous}）",
        "环比变化",
        f"同比（{last_year}）",
        "同比变化",
    ]
    ws.append([_cell(ws, h, header=True) for h in header])
    for item in rates["items"]:
        change_fmt = "rate"
        ws.append(
            [
                _cell(ws, item["label"]),
                _cell(ws, item["value"], item["format"]),
                _cell(ws, item["previous"], item["format"]),
                _cell(ws, item["change_previous"], change_fmt),
                _cell(ws, item["last_year"], item["format"]),
                _cell(ws, item["change_last_year"], change_fmt),
            ]
        )

    for kind in ("inspectors", "operators", "shiftleads", "dispatchers", "departments"):
        label = service.KIND_LABELS[kind]
        _table(wb, label, f"{heading} — {label}", service.COLUMNS[kind], service.table(ctx, kind))
    by_level = service.regions_by_level(ctx, list(service.LEVEL_LABELS))
    for level, label in service.LEVEL_LABELS.items():
        rows = [r for r in by_level[level] if r["due"] or r["filed"]]
        _table(wb, label, f"{heading} — {label}", service.COLUMNS["regions"], rows)

    ws = wb.create_sheet("说明")
    ws.column_dimensions["A"].width = 22
    ws.column_dimensions["B"].width = 90
    _title(ws, "指标口径")
    ws.append([_cell(ws, "指标", header=True), _cell(ws, "计算方法", header=True)])
    for name, text in NOTES:
        ws.append([name, text])
    ws.append([])
    ws.append(["统计期", f"{period.label}（{period.first} 至 {period.last}）"])
    ws.append(["数据来源", f"案卷时间线（{ctx.source.mode}）"])
    wb.save(out)


def workbook_bytes(ctx: service.Context) -> bytes:
    buffer = io.BytesIO()
    write_workbook(ctx, buffer)
    return buffer.getvalue()
