"""The Open311 wire formats: XML (required by the spec) and JSON (bare arrays).

Documents are built as plain dicts and lists in the spec's element order, then written as
either format. XML has a declaration, no namespaces and no attributes; a list element's
children take the singular name the spec gives them (``services`` → ``service``); an empty
optional field is an empty element. Characters XML 1.0 cannot carry are dropped.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, tzinfo
from typing import Any
from xml.sax.saxutils import escape

XML_TYPE = "text/xml; charset=utf-8"
JSON_TYPE = "application/json; charset=utf-8"
FORMATS = ("xml", "json")

CHILD = {
    "services": "service",
    "attributes": "attribute",
    "values": "value",
    "service_requests": "request",
    "errors": "error",
    "endpoints": "endpoint",
    "formats": "format",
}
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def w3c(value: datetime | None, tz: tzinfo) -> str | None:
    """ISO 8601 with the offset, in the city's time zone: 2026-08-27T16:05:00+08:00."""
    if value is None:
        return None
    return value.astimezone(tz).isoformat(timespec="seconds")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return escape(_NOT_XML.sub("", str(value)))


def _element(tag: str, value: Any, out: list[str]) -> None:
    if isinstance(value, dict):
        out.append(f"<{tag}>")
        for key, item in value.items():
            _element(key, item, out)
        out.append(f"</{tag}>")
    elif isinstance(value, list):
        child = CHILD[tag]
        out.append(f"<{tag}>")
        for item in value:
            _element(child, item, out)
        out.append(f"</{tag}>")
    else:
        out.append(f"<{tag}>{_text(value)}</{tag}>")


def to_xml(root: str, document: Any) -> bytes:
    out = ['<?xml version="1.0" encoding="utf-8"?>\n']
    _element(root, document, out)
    return "".join(out).encode("utf-8")


def to_json(document: Any) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def encode(fmt: str, root: str, document: Any) -> tuple[bytes, str]:
    """The body and its content type."""
    if fmt == "json":
        return to_json(document), JSON_TYPE
    return to_xml(root, document), XML_TYPE


def errors_document(status: int, description: str) -> list[dict[str, Any]]:
    # The spec's code "should match the HTTP status code" in most cases.
    return [{"code": status, "description": description}]
