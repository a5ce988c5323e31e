"""A local SMS provider: Aliyun's SendSms, answered here, with the codes it "sent" shown.

It checks what Aliyun checks (the AccessKeyId and the request's signature, with the same
shared secret), so identity's real adapter (services/identity/sms.py) is what talks to
it. Messages are kept by OutId: a resend of the same outbox row is one message, as the
outbox promises.

    GET  /?Action=SendSms&...        the provider's API (signed)
    GET  /health
Admin (needs `Authorization: Bearer $SMS_SIM_TOKEN`, generated per installation by
`make run` in .run/sms-sim-token; without the variable set, /_sim refuses all):
    GET  /_sim/messages[?phone=...]  what was sent, newest last: phone, code, out_id, at
    POST /_sim/config                {"down": true} answers every SendSms with an error

    python -m services.identity.sms_simulator --address 127.0.0.1:8006
"""
from __future__ import annotations

import argparse
import hmac
import json
import os
import threading
import uuid
from datetime import UTC, datetime

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from services.identity.sms import aliyun_signature


def _json(body, status: int = 200) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status,
                    content_type="application/json; charset=utf-8")


class SmsSimulator:
    """The WSGI app; `messages` and `down` are its state, in memory."""

    def __init__(self, access_key_id: str, access_key_secret: str, admin_token: str):
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        self.admin_token = admin_token
        self.messages: dict[str, dict] = {}  # by OutId, in order of arrival
        self.down = False
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        request = Request(environ)
        if request.path == "/health":
            response = _json({"status": "ok"})
        elif request.path.startswith("/_sim/"):
            response = self.admin(request)
        elif request.path == "/" and request.args.get("Action") == "SendSms":
            response = self.send_sms(request.args.to_dict())
        else:
            response = _json({"Code": "InvalidAction.NotFound"}, 404)
        return response(environ, start_response)

    def send_sms(self, params: dict) -> Response:
        given = params.pop("Signature", "")
        if params.get("AccessKeyId") != self.access_key_id:
            return _json({"Code": "InvalidAccessKeyId.NotFound",
                          "Message": "Specified access key is not found."}, 404)
        if not hmac.compare_digest(given, aliyun_signature(params, self.access_key_secret)):
            return _json({"Code": "SignatureDoesNotMatch",
                          "Message": "Specified signature is not matched with our calculation."},
                         400)
        if self.down:
            return _json({"Code": "isp.SYSTEM_ERROR", "Message": "simulated outage"}, 500)
        try:
            code = json.loads(params.get("TemplateParam", "{}"))["code"]
        except (ValueError, KeyError, TypeError):
            return _json({"Code": "isv.TEMPLATE_PARAMS_ILLEGAL", "Message": "no code"}, 400)
        out_id = params.get("OutId") or str(uuid.uuid4())
        with self.lock:
            message = self.messages.setdefault(out_id, {
                "phone": params.get("PhoneNumbers"), "code": code, "out_id": out_id,
                "biz_id": uuid.uuid4().hex, "at": datetime.now(UTC).isoformat(),
                "requests": 0})
            message["requests"] += 1
        return _json({"Code": "OK", "Message": "OK", "BizId": message["biz_id"],
                      "RequestId": str(uuid.uuid4())})

    def admin(self, request: Request) -> Response:
        expected = f"Bearer {self.admin_token}"
        if not self.admin_token or not hmac.compare_digest(
                request.headers.get("Authorization", ""), expected):
            return _json({"error": "Authorization: Bearer <SMS_SIM_TOKEN> required"}, 403)
        if request.path == "/_sim/messages":
            phone = request.args.get("phone")
            with self.lock:
                found = [m for m in self.messages.values() if phone in (None, m["phone"])]
            return _json({"items": found})
        if request.path == "/_sim/config" and request.method == "POST":
            self.down = bool((request.get_json(silent=True) or {}).get("down"))
            return _json({"down": self.down})
        return _json({"error": "not found"}, 404)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", default=os.environ.get("SMS_SIM_ADDRESS", "127.0.0.1:8006"))
    args = parser.parse_args(argv)
    host, port = args.address.rsplit(":", 1)
    app = SmsSimulator(os.environ["SMS_ACCESS_KEY_ID"], os.environ["SMS_ACCESS_KEY_SECRET"],
                       os.environ.get("SMS_SIM_TOKEN", ""))
    make_server(host, int(port), app, threaded=True).serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
