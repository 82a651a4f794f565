"""The notification channels, each a plug-in behind `cityloop.outbox.channels.Channel`:
SMS (an HTTP gateway, or a log file for the demo), e-mail (SMTP), WeChat template messages
(公众号模板消息), and department webhooks (signed JSON). The in-app inbox is not here: it is
a row written in the event's transaction (`subscriber.py`), read by the live stream.

Every channel reads the recipient's address itself, in the worker, in `prepare`: the outbox
row names only "user:5" or "case:7", so a reporter's phone never leaves the cases table
except inside the worker, on its way to the gateway. Each send carries the outbox id as
its idempotency key where the far side knows one (the SMS gateway's OutId, the e-mail's
Message-ID, WeChat's client_msg_id, the webhook's X-Cityloop-Delivery): a retried delivery
is recognisable and not sent twice."""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import ssl
import threading
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

import httpx
from sqlalchemy.orm import Session

from cityloop.cases.models import Case
from cityloop.notifications.service import address_of
from cityloop.notifications.settings import NotifySettings
from cityloop.org.models import Department, User
from cityloop.outbox import channels as registry
from cityloop.outbox.service import Delivery, SendResult

SKIPPED = "skipped: "


def _skip(reason: str) -> SendResult:
    # Nothing to send to (no phone, no address, channel not configured): delivered as
    # skipped, visible in the outbox, not retried.
    return SendResult(ok=True, error=SKIPPED + reason)


def _http_result(response: httpx.Response) -> SendResult:
    if 200 <= response.status_code < 300:
        return SendResult(ok=True, status_code=response.status_code)
    permanent = 400 <= response.status_code < 500 and response.status_code not in (408, 429)
    return SendResult(
        ok=False,
        status_code=response.status_code,
        error=f"HTTP {response.status_code}: {response.text[:200]}",
        permanent=permanent,
    )


def _phone(session: Session, target: str) -> str | None:
    kind, _, ident = target.partition(":")
    if not ident.isdigit():
        return None
    if kind == "user":
        user = session.get(User, int(ident))
        return user.phone if user is not None and user.active else None
    if kind == "case":
        case = session.get(Case, int(ident))
        return case.reporter_phone if case is not None else None
    return None


class _Http:
    """One HTTP client per channel, kept: a new client per message loads the CA bundle
    again and opens a new connection (most of a delivery's time, measured in
    bench/bench_events.py)."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = httpx.Client(timeout=self.timeout, follow_redirects=False)
        return self._client


def sign(secret: str, body: bytes) -> str:
    """The X-Cityloop-Signature value: HMAC-SHA256 of the exact body, hex."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class SmsChannel:
    """An HTTP SMS gateway in the shape of the common Chinese ones (Aliyun dysms style):
    PhoneNumbers, SignName, TemplateCode, TemplateParam (JSON text), OutId, with the access
    key and an HMAC-SHA256 signature of the body in headers. Or a JSON-lines log file."""

    name = "sms"

    def __init__(self, settings: NotifySettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self.http = _Http(settings.timeout_seconds)

    def prepare(self, session: Session, delivery: Delivery) -> Any:
        if self.settings.sms_backend == "off":
            return _skip("SMS is off")
        phone = _phone(session, delivery.target_url)
        if not phone:
            return _skip("no phone")
        return phone

    def request_body(self, delivery: Delivery, phone: str) -> dict[str, Any]:
        payload = delivery.payload
        return {
            "PhoneNumbers": phone,
            "SignName": self.settings.sms_sign_name,
            "TemplateCode": payload.get("sms_template_id") or payload.get("template"),
            "TemplateParam": json.dumps(payload.get("params", {}), ensure_ascii=False),
            "OutId": f"cityloop-{delivery.id}",
        }

    def send(self, delivery: Delivery, prepared: Any) -> SendResult:
        body = self.request_body(delivery, str(prepared))
        if self.settings.sms_backend == "log":
            line = {**body, "Text": delivery.payload.get("text"), "at": _now_iso()}
            path = self.settings.sms_log_path
            path.parent.mkdir(parents=True, exist_ok=True)
            with self._lock, path.open("a", encoding="utf-8") as log:
                log.write(json.dumps(line, ensure_ascii=False) + "\n")
            return SendResult(ok=True)
        if not self.settings.sms_gateway_url:
            return SendResult(ok=False, error="CITYLOOP_NOTIFY_SMS_GATEWAY_URL is not set")
        raw = json.dumps(body, ensure_ascii=False).encode("utf-8")
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "X-Access-Key": self.settings.sms_access_key,
            "X-Signature": sign(self.settings.sms_access_secret, raw),
            "X-Request-Id": f"cityloop-{delivery.id}",
        }
        try:
            response = self.http.client.post(
                self.settings.sms_gateway_url, content=raw, headers=headers
            )
        except httpx.HTTPError as exc:
            return SendResult(ok=False, error=f"{type(exc).__name__}: {exc}")
        result = _http_result(response)
        if result.ok:
            # The gateway answers 200 with its own code: "OK", else the refusal.
            try:
                answer = response.json()
            except ValueError:
                answer = {}
            code = str(answer.get("Code", "OK")) if isinstance(answer, dict) else "OK"
            if code != "OK":
                return SendResult(
                    ok=False,
                    status_code=response.status_code,
                    error=f"gateway refused: {code} {answer.get('Message', '')}"[:200],
                    permanent=not code.startswith("isv.BUSINESS_LIMIT"),
                )
        return result


def read_sms_log(settings: NotifySettings, limit: int = 200) -> list[dict[str, Any]]:
    """The demo backend's messages, newest first, for the administrator."""
    path = settings.sms_log_path
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()[-limit:]
    found = []
    for line in reversed(lines):
        try:
            found.append(json.loads(line))
        except ValueError:
            continue
    return found


class EmailChannel:
    name = "email"

    def __init__(self, settings: NotifySettings) -> None:
        self.settings = settings

    def prepare(self, session: Session, delivery: Delivery) -> Any:
        if not self.settings.smtp_host:
            return _skip("SMTP is not configured")
        kind, _, ident = delivery.target_url.partition(":")
        if kind != "user" or not ident.isdigit():
            return _skip("no e-mail address")
        address = address_of(session, "email", user_id=int(ident))
        return address or _skip("no e-mail address")

    def send(self, delivery: Delivery, prepared: Any) -> SendResult:
        s = self.settings
        message = EmailMessage()
        message["From"] = s.smtp_from
        message["To"] = str(prepared)
        message["Subject"] = str(delivery.payload.get("title", ""))
        message["Date"] = formatdate(localtime=False)
        # The same id on every attempt: a mail system (and a reader) sees a resend as one.
        message["Message-ID"] = f"<outbox-{delivery.id}@cityloop>"
        link = delivery.payload.get("link")
        text = str(delivery.payload.get("text", ""))
        message.set_content(text + (f"\n\n{link}" if link else ""))
        try:
            if s.smtp_ssl:
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    s.smtp_host or "",
                    s.smtp_port,
                    timeout=s.timeout_seconds,
                    context=ssl.create_default_context(),
                )
            else:
                client = smtplib.SMTP(s.smtp_host or "", s.smtp_port, timeout=s.timeout_seconds)
            with client:
                if s.smtp_starttls:
                    client.starttls(context=ssl.create_default_context())
                if s.smtp_user:
                    client.login(s.smtp_user, s.smtp_password or "")
                client.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            return SendResult(ok=False, error=f"recipient refused: {exc}"[:200], permanent=True)
        except (smtplib.SMTPException, OSError) as exc:
            return SendResult(ok=False, error=f"{type(exc).__name__}: {exc}"[:200])
        return SendResult(ok=True, status_code=250)


class WechatChannel:
    """公众号模板消息: POST /cgi-bin/message/template/send?access_token=… with touser,
    template_id, url, data and client_msg_id; the access token from /cgi-bin/token, cached
    until shortly before it expires and fetched again when WeChat says it is invalid
    (errcode 40001 / 42001)."""

    name = "wechat"
    _RENEW = frozenset({40001, 40014, 42001})

    def __init__(self, settings: NotifySettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._token: tuple[str, float] | None = None
        self.http = _Http(settings.timeout_seconds)

    def prepare(self, session: Session, delivery: Delivery) -> Any:
        if not (self.settings.wechat_appid and self.settings.wechat_secret):
            return _skip("WeChat is not configured")
        kind, _, ident = delivery.target_url.partition(":")
        openid = None
        if kind == "user" and ident.isdigit():
            openid = address_of(session, "wechat", user_id=int(ident))
        elif kind == "case" and ident.isdigit():
            phone = _phone(session, delivery.target_url)
            openid = address_of(session, "wechat", phone=phone) if phone else None
        return openid or _skip("no WeChat openid")

    def access_token(self, client: httpx.Client, *, renew: bool = False) -> str:
        with self._lock:
            if not renew and self._token is not None and time.monotonic() < self._token[1]:
                return self._token[0]
            response = client.get(
                f"{self.settings.wechat_api_base}/cgi-bin/token",
                params={
                    "grant_type": "client_credential",
                    "appid": self.settings.wechat_appid,
                    "secret": self.settings.wechat_secret,
                },
            )
            answer = response.json()
            if "access_token" not in answer:
                raise RuntimeError(f"token refused: {answer.get('errcode')} {answer.get('errmsg')}")
            # Renewed five minutes early: WeChat's tokens live 7200 s.
            lifetime = max(int(answer.get("expires_in", 7200)) - 300, 60)
            self._token = (answer["access_token"], time.monotonic() + lifetime)
            return self._token[0]

    def send(self, delivery: Delivery, prepared: Any) -> SendResult:
        payload = delivery.payload
        message = {
            "touser": str(prepared),
            "template_id": payload.get("wechat_template_id") or payload.get("template"),
            "url": payload.get("link") or "",
            "client_msg_id": f"cityloop-{delivery.id}",
            "data": {
                "first": {"value": payload.get("title", "")},
                "keyword1": {"value": payload.get("ticket") or ""},
                "keyword2": {"value": payload.get("event_label") or ""},
                "remark": {"value": payload.get("text", "")},
            },
        }
        client = self.http.client
        answer: dict[str, Any] = {}
        try:
            for attempt in range(2):
                token = self.access_token(client, renew=attempt > 0)
                response = client.post(
                    f"{self.settings.wechat_api_base}/cgi-bin/message/template/send",
                    params={"access_token": token},
                    json=message,
                )
                if response.status_code >= 300:
                    return _http_result(response)
                answer = response.json()
                if answer.get("errcode") not in self._RENEW:
                    break
        except (httpx.HTTPError, RuntimeError, ValueError) as exc:
            return SendResult(ok=False, error=f"{type(exc).__name__}: {exc}"[:200])
        code = answer.get("errcode", 0)
        if code == 0:
            return SendResult(ok=True, status_code=200)
        # -1: WeChat busy, retry; anything else (43004 not following, 40003 bad openid, …)
        # will not change by trying again.
        return SendResult(
            ok=False,
            status_code=200,
            error=f"WeChat errcode {code}: {answer.get('errmsg', '')}"[:200],
            permanent=code != -1,
        )


class DepartmentWebhookChannel:
    """A department's own system: the event as JSON, signed with the department's secret
    (X-Cityloop-Signature: sha256=<hex HMAC of the body>), with X-Cityloop-Event and the
    delivery id; a 2xx ends it, anything else is retried with back-off."""

    name = "dept_webhook"

    def __init__(self, settings: NotifySettings) -> None:
        self.settings = settings
        self.http = _Http(settings.timeout_seconds)

    def prepare(self, session: Session, delivery: Delivery) -> Any:
        department_id = delivery.payload.get("department", {}).get("id")
        department = session.get(Department, department_id) if department_id else None
        if department is None or not department.webhook_secret:
            return _skip("the department has no webhook secret any more")
        return department.webhook_secret

    def send(self, delivery: Delivery, prepared: Any) -> SendResult:
        headers = {
            **delivery.headers,
            "X-Cityloop-Event": str(delivery.payload.get("event", "")),
            "X-Cityloop-Signature": sign(str(prepared), delivery.body),
        }
        try:
            response = self.http.client.post(
                delivery.target_url, content=delivery.body, headers=headers
            )
        except httpx.HTTPError as exc:
            return SendResult(ok=False, error=f"{type(exc).__name__}: {exc}")
        result = _http_result(response)
        # A department's system that refuses (4xx) may be fixed by its owner: keep retrying
        # within the attempts, as for partners.
        return SendResult(result.ok, result.status_code, result.error)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def register_channels(settings: NotifySettings | None = None) -> NotifySettings:
    """Put the channels in the outbox's registry (at start-up; again to change settings)."""
    settings = settings or NotifySettings()
    for channel in (
        SmsChannel(settings),
        EmailChannel(settings),
        WechatChannel(settings),
        DepartmentWebhookChannel(settings),
    ):
        registry.register(channel)
    return settings
