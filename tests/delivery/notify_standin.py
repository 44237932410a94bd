"""A local stand-in for GOV.UK Notify's v2 API, for tests: the real client talks to it.

Speaks POST /v2/notifications/email and /sms, GET /v2/notifications?reference=... and
GET /v2/notifications/{id}; checks the client's JWT (HS256, iss = service id, fresh iat)
with the client library's own decoder; answers the documented simulated addresses and
numbers with their statuses (temp-fail@simulator.notify, perm-fail@simulator.notify,
07700900003, 07700900002; everything else is delivered, as with a test key); and can
inject failures: an HTTP status (429, 500, 503) before anything is created, a 500 or a
slow answer *after* the notification was created (the ambiguous cases), or a rate limit.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from notifications_python_client.authentication import decode_jwt_token, get_token_issuer
from notifications_python_client.errors import TokenError

SERVICE_ID = "26785a09-ab16-4eb0-8407-a37497a57506"
SECRET = "3d844edf-8d35-48ac-975b-e847b4f122b0"
API_KEY = f"nudge_test-{SERVICE_ID}-{SECRET}"
EMAIL_TEMPLATE_ID = "f33517ff-2a88-4f6e-b855-c550268ce08a"
SMS_TEMPLATE_ID = "4b8b1b8a-6b1d-4e5b-9a36-2c5b1e0f4d11"

SIMULATED = {
    "temp-fail@simulator.notify": "temporary-failure",
    "perm-fail@simulator.notify": "permanent-failure",
    "07700900003": "temporary-failure",
    "07700900002": "permanent-failure",
}


class NotifyStandIn:
    def __init__(self, rate_limit_per_minute: int | None = None):
        self.notifications: dict[str, dict] = {}
        self.requests: list[tuple[str, str]] = []
        self.faults: list[str] = []  # "429", "500", "503", "500-after-create", "slow-after-create"
        self.slow_seconds = 3.0
        self.rate_limit = rate_limit_per_minute
        self._window: list[float] = []
        self.lock = threading.Lock()
        self.server = _QuietServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> NotifyStandIn:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def inject(self, *faults: str) -> None:
        with self.lock:
            self.faults.extend(faults)

    def by_reference(self, reference: str) -> list[dict]:
        return [n for n in self.notifications.values() if n["reference"] == reference]

    def receipt(self, notification_id: str) -> dict:
        """The JSON body Notify would POST to a delivery-receipt callback."""
        n = self.notifications[notification_id]
        return {
            "id": n["id"],
            "reference": n["reference"],
            "to": n.get("email_address") or n.get("phone_number"),
            "status": n["status"],
            "created_at": n["created_at"],
            "completed_at": n["completed_at"],
            "sent_at": n["sent_at"],
            "notification_type": n["type"],
            "template_id": n["template"]["id"],
            "template_version": 1,
        }

    # ------------------------------------------------------------------ HTTP handling

    def _handler(self):
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _reply(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _auth(self) -> bool:
                header = self.headers.get("Authorization", "")
                if not header.startswith("Bearer "):
                    self._reply(401, _error(401, "AuthError", "Unauthorized: authentication "
                                            "token must be provided"))  # fmt: skip
                    return False
                token = header[len("Bearer ") :]
                try:
                    if get_token_issuer(token) != SERVICE_ID:
                        raise TokenError("Invalid token: service not found")
                    decode_jwt_token(token, SECRET)
                except TokenError as exc:
                    self._reply(403, _error(403, "AuthError", exc.message))
                    return False
                return True

            def do_GET(self):
                standin.requests.append(("GET", self.path))
                if not self._auth():
                    return
                url = urlparse(self.path)
                if url.path == "/v2/notifications":
                    query = parse_qs(url.query)
                    found = list(standin.notifications.values())
                    if "reference" in query:
                        found = [n for n in found if n["reference"] == query["reference"][0]]
                    if "status" in query:
                        found = [n for n in found if n["status"] in query["status"]]
                    found.sort(key=lambda n: n["created_at"], reverse=True)
                    self._reply(200, {"notifications": found, "links": {"current": self.path}})
                    return
                if url.path.startswith("/v2/notifications/"):
                    n = standin.notifications.get(url.path.rsplit("/", 1)[1])
                    if n is None:
                        self._reply(404, _error(404, "NoResultFound", "No result found"))
                    else:
                        self._reply(200, n)
                    return
                self._reply(404, _error(404, "NotFound", "not found"))

            def do_POST(self):
                standin.requests.append(("POST", self.path))
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if not self._auth():
                    return
                kind = {"/v2/notifications/email": "email", "/v2/notifications/sms": "sms"}.get(
                    self.path
                )
                if kind is None:
                    self._reply(404, _error(404, "NotFound", "not found"))
                    return
                with standin.lock:
                    fault = standin.faults.pop(0) if standin.faults else None
                    limited = standin._rate_limited()
                if fault in ("429",) or limited:
                    self._reply(429, _error(429, "RateLimitError", "Exceeded rate limit for "
                                            "key type LIVE of 3000 requests per 60 seconds"))  # fmt: skip
                    return
                if fault in ("500", "503"):
                    self._reply(int(fault), _error(int(fault), "Exception", "Internal error"))
                    return
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    self._reply(400, _error(400, "BadRequestError", "Invalid JSON"))
                    return
                problem = _validate(kind, body)
                if problem:
                    self._reply(400, _error(400, "ValidationError", problem))
                    return
                created = standin._create(kind, body)
                if fault == "500-after-create":
                    self._reply(500, _error(500, "Exception", "Internal error"))
                    return
                if fault == "slow-after-create":
                    time.sleep(standin.slow_seconds)
                answer = {
                    "id": created["id"],
                    "reference": created["reference"],
                    "content": {"body": created["body"]},
                    "uri": f"{standin.url}/v2/notifications/{created['id']}",
                    "template": created["template"],
                    "scheduled_for": None,
                }
                if kind == "email":
                    answer["content"].update(subject=created["subject"],
                                             from_email="nudge@notifications.service.gov.uk")  # fmt: skip
                self._reply(201, answer)

        return Handler

    def _rate_limited(self) -> bool:
        if not self.rate_limit:
            return False
        now = time.monotonic()
        self._window = [t for t in self._window if now - t < 60]
        if len(self._window) >= self.rate_limit:
            return True
        self._window.append(now)
        return False

    def _create(self, kind: str, body: dict) -> dict:
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        to = body.get("email_address") if kind == "email" else body.get("phone_number")
        personalisation = body.get("personalisation") or {}
        n = {
            "id": str(uuid.uuid4()),
            "reference": body.get("reference"),
            "email_address": to if kind == "email" else None,
            "phone_number": to if kind == "sms" else None,
            "type": kind,
            "status": SIMULATED.get(to, "delivered"),
            "template": {"id": body["template_id"], "version": 1, "uri": ""},
            "body": personalisation.get("body", ""),
            "subject": personalisation.get("subject") if kind == "email" else None,
            "one_click_unsubscribe_url": body.get("one_click_unsubscribe_url"),
            "created_at": now,
            "sent_at": now,
            "completed_at": now,
        }
        with self.lock:
            self.notifications[n["id"]] = n
        return n


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # a client that timed out and hung up (the slow-answer fault) is expected


def _error(status: int, error: str, message: str) -> dict:
    return {"status_code": status, "errors": [{"error": error, "message": message}]}


def _validate(kind: str, body: dict) -> str | None:
    if kind == "email":
        address = body.get("email_address") or ""
        if "@" not in address or address.startswith("@") or address.endswith("@"):
            return "email_address Not a valid email address"
        expected = EMAIL_TEMPLATE_ID
    else:
        digits = "".join(ch for ch in (body.get("phone_number") or "") if ch.isdigit())
        if len(digits) < 10:
            return "phone_number Not enough digits"
        expected = SMS_TEMPLATE_ID
    if body.get("template_id") != expected:
        return (
            "template_id is not a valid UUID"
            if not body.get("template_id")
            else ("Template not found")
        )
    reference = body.get("reference")
    if reference is not None and "@" in str(reference):
        return "reference must not hold personal data (test stand-in check)"
    return None
