"""The channels, each against a real server on 127.0.0.1 (issue 13, R-IN-5): e-mail to an
aiosmtpd server, a department's signed webhook checked by its receiver, WeChat template
messages to a local server speaking the documented JSON (token cached and renewed), the SMS
gateway's retries on 5xx and its refusal (4xx) failing at once, the demo log backend.
Delivered by the worker's job (`deliver_due`), on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select

from cityloop.db import begin_write
from cityloop.notifications import service
from cityloop.notifications.channels import register_channels
from cityloop.notifications.settings import NotifySettings
from cityloop.outbox.delivery import deliver_due
from cityloop.outbox.models import OutboxMessage
from tests.notifications.conftest import NOW, department, dispatch_a_case, user

SECRET = "s3cret-of-the-district-office"


def _messages(factory, channel: str) -> list[OutboxMessage]:
    with factory() as session:
        rows = session.scalars(
            select(OutboxMessage).where(OutboxMessage.channel == channel).order_by(OutboxMessage.id)
        ).all()
        session.expunge_all()
        return list(rows)


def _add_rule(factory, **rule: Any) -> None:
    with factory() as session:
        begin_write(session)
        service.create_rule(session, rule)
        session.commit()


def test_email_reaches_a_real_smtp_server_once(factory, smtp_server, tmp_path):
    register_channels(
        NotifySettings(
            smtp_host=smtp_server.host,
            smtp_port=smtp_server.port,
            smtp_from="noreply@cityloop.test",
            sms_log=tmp_path / "sms.log",
        )
    )
    _add_rule(
        factory,
        event="dispatch",
        recipient="department",
        channels=["inbox", "email"],
        template="case_assigned",
    )
    with factory() as session:
        begin_write(session)
        service.set_address(
            session, "email", "wangfang@siming.test", user_id=user(session, "handler").id
        )
        session.commit()
    _case_id, ticket = dispatch_a_case(factory)

    report = deliver_due(factory, now=NOW)
    assert report.delivered >= 1
    again = deliver_due(factory, now=NOW + timedelta(hours=1))
    assert again.sent == 0
    mails = [(to, m) for to, m in smtp_server.messages if "wangfang@siming.test" in to]
    assert len(mails) == 1
    _to, message = mails[0]
    assert message["Subject"] == f"新派遣案件 {ticket}"
    assert message["From"] == "noreply@cityloop.test"
    [row] = [
        m for m in _messages(factory, "email") if m.status == "delivered" and m.last_error is None
    ]
    assert message["Message-ID"] == f"<outbox-{row.id}@cityloop>"
    assert "处置时限" in message.get_content()
    assert "http://127.0.0.1:8000/case/" in message.get_content()  # a link that opens the case


def test_a_department_webhook_is_signed_retried_and_recognisable(factory, receiver, tmp_path):
    register_channels(NotifySettings(sms_log=tmp_path / "sms.log"))
    with factory() as session:
        begin_write(session)
        service.set_webhook(session, department(session, "D-350203").id, receiver.url, SECRET)
        session.commit()
    receiver.fail_next(1, status=503)
    _case_id, ticket = dispatch_a_case(factory)

    first = deliver_due(factory, now=NOW)
    assert first.retried == 1 and len(receiver.received) == 1
    [row] = _messages(factory, "dept_webhook")
    assert (row.status, row.last_status_code) == ("pending", 503)  # visible while failing
    deliver_due(factory, now=NOW + timedelta(minutes=5))
    assert len(receiver.received) == 2

    for got in receiver.received:
        raw = json.dumps(got.body, ensure_ascii=False).encode("utf-8")
        expected = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
        assert got.headers["X-Cityloop-Signature"] == expected
        assert got.headers["X-Cityloop-Event"] == "case.dispatch"
    # The retry is the same delivery: the receiver recognises the replay by its id.
    assert {g.headers["X-Cityloop-Delivery"] for g in receiver.received} == {str(row.id)}
    body = receiver.received[-1].body
    assert body["case"]["ticket"] == ticket and body["state"] == "dispatched"
    assert body["department"]["code"] == "D-350203"
    # Tampering shows: a wrong key does not give the same signature.
    forged = "sha256=" + hmac.new(b"wrong", raw, hashlib.sha256).hexdigest()
    assert forged != receiver.received[-1].headers["X-Cityloop-Signature"]
    assert _messages(factory, "dept_webhook")[0].status == "delivered"


@contextmanager
def wechat_server(*, invalid_once: bool = False) -> Iterator[dict[str, Any]]:
    """The two calls of the Official Account API a template message takes, as documented:
    GET /cgi-bin/token and POST /cgi-bin/message/template/send?access_token=…"""
    state: dict[str, Any] = {"tokens": 0, "sent": [], "invalid_once": invalid_once}

    class Handler(BaseHTTPRequestHandler):
        def _json(self, data: dict[str, Any]) -> None:
            raw = json.dumps(data).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self) -> None:
            query = parse_qs(urlsplit(self.path).query)
            if urlsplit(self.path).path != "/cgi-bin/token" or query.get("appid") != ["wxAPPID"]:
                self._json({"errcode": 40013, "errmsg": "invalid appid"})
                return
            state["tokens"] += 1
            self._json({"access_token": f"TOKEN{state['tokens']}", "expires_in": 7200})

        def do_POST(self) -> None:
            token = parse_qs(urlsplit(self.path).query).get("access_token", [""])[0]
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if state["invalid_once"]:
                state["invalid_once"] = False
                self._json({"errcode": 40001, "errmsg": "invalid credential"})
                return
            state["sent"].append((token, body))
            self._json({"errcode": 0, "errmsg": "ok", "msgid": len(state["sent"])})

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state["url"] = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def test_wechat_template_messages_cache_and_renew_the_token(factory, tmp_path):
    phone = "13912340000"
    with wechat_server(invalid_once=True) as wx:
        register_channels(
            NotifySettings(
                wechat_api_base=wx["url"],
                wechat_appid="wxAPPID",
                wechat_secret="wxSECRET",
                sms_backend="off",
                sms_log=tmp_path / "sms.log",
            )
        )
        with factory() as session:
            begin_write(session)
            service.set_address(session, "wechat", "oOPENID-citizen", phone=phone)
            session.commit()
        _case_id, ticket = dispatch_a_case(factory, phone=phone)
        _case_id2, ticket2 = dispatch_a_case(factory, phone=phone, class_code="06010")
        deliver_due(factory, now=NOW)

        # The first send met an expired token: renewed once, then both sent with it.
        assert wx["tokens"] == 2
        assert [token for token, _ in wx["sent"]] == ["TOKEN2", "TOKEN2"]
        bodies = [body for _, body in wx["sent"]]
        assert {b["touser"] for b in bodies} == {"oOPENID-citizen"}
        assert [b["data"]["keyword1"]["value"] for b in bodies] == [ticket, ticket2]
        assert all(b["template_id"] == "TPL_CITIZEN_FILED" for b in bodies)
        assert all(b["client_msg_id"].startswith("cityloop-") for b in bodies)
        assert ticket in bodies[0]["url"]
        assert all(m.status == "delivered" for m in _messages(factory, "wechat"))


@contextmanager
def sms_gateway(answers: list[int]) -> Iterator[dict[str, Any]]:
    state: dict[str, Any] = {"received": []}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers["Content-Length"]))
            state["received"].append((dict(self.headers.items()), json.loads(raw), raw))
            status = answers.pop(0) if answers else 200
            out = json.dumps({"Code": "OK" if status == 200 else "isv.MOBILE_NUMBER_ILLEGAL"})
            self.send_response(status)
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out.encode())

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state["url"] = f"http://127.0.0.1:{server.server_address[1]}/sms/send"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def test_the_sms_gateway_is_retried_on_5xx_and_a_4xx_fails_at_once(factory, tmp_path):
    phone = "13912349999"
    # The citizen's receipt first meets a 502, the office's SMS goes through, the receipt's
    # retry too; then the next case's receipt is refused (400: not a number it can send to).
    with sms_gateway([502, 200, 200, 400]) as gw:
        register_channels(
            NotifySettings(
                sms_backend="http",
                sms_gateway_url=gw["url"],
                sms_access_key="AK",
                sms_access_secret="SK",
                sms_log=tmp_path / "sms.log",
            )
        )
        case_id, ticket = dispatch_a_case(factory, phone=phone)
        [row] = [m for m in _messages(factory, "sms") if m.target_url == f"case:{case_id}"]
        assert phone not in json.dumps(row.payload)
        first = deliver_due(factory, now=NOW)
        assert first.retried == 1  # (the WeChat copy, not configured here, is skipped)
        deliver_due(factory, now=NOW + timedelta(minutes=10))
        assert len(gw["received"]) == 3
        headers, body, raw = gw["received"][0]
        assert body["PhoneNumbers"] == phone  # read by the worker, at the last moment
        assert body["TemplateCode"] == "SMS_CITIZEN_FILED"
        assert json.loads(body["TemplateParam"])["ticket"] == ticket
        assert body["OutId"] == f"cityloop-{row.id}"
        assert (
            headers["X-Signature"] == "sha256=" + hmac.new(b"SK", raw, hashlib.sha256).hexdigest()
        )
        # The retry is recognisable as the same message.
        assert gw["received"][2][1]["OutId"] == body["OutId"]
        assert {m.target_url: m.status for m in _messages(factory, "sms")}[f"case:{case_id}"] == (
            "delivered"
        )

        second, _ = dispatch_a_case(factory, phone="1391234", class_code="06010")
        deliver_due(factory, now=NOW + timedelta(minutes=20))
        refused = {m.target_url: m for m in _messages(factory, "sms")}[f"case:{second}"]
        assert (refused.status, refused.attempts) == ("failed", 1)
        assert "400" in (refused.last_error or "")
        deliver_due(factory, now=NOW + timedelta(hours=7))
        assert len(gw["received"]) == 5  # the refused one was not sent again


def test_the_demo_log_backend_keeps_what_an_administrator_reads(factory, tmp_path):
    from cityloop.notifications.channels import read_sms_log

    settings = NotifySettings(sms_log=tmp_path / "sms.log")
    register_channels(settings)
    _case_id, ticket = dispatch_a_case(factory, phone="13912345670")
    deliver_due(factory, now=NOW)
    lines = read_sms_log(settings)
    assert any(ticket in (line.get("Text") or "") for line in lines)
    assert any(line["PhoneNumbers"] == "13912345670" for line in lines)
