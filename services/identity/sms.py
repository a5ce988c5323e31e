"""Sending a one-time code by SMS: a port (SmsSender) and its adapter for Aliyun's Short
Message Service (dysmsapi, SendSms, RPC-style signature version 1.0).

One adapter serves both the real provider and the local simulator
(services/identity/sms_simulator.py): the simulator speaks the same SendSms request and
checks the same signature, so what runs in `make run` and in the tests is the code that
will talk to Aliyun, only its endpoint and keys differ (SMS_ENDPOINT, SMS_ACCESS_KEY_*).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Protocol
from urllib.parse import quote

import requests

from minqing_kernel import messages

ALIYUN_ENDPOINT = "https://dysmsapi.aliyuncs.com/"


class SmsFailed(Exception):
    """The provider did not take the message: `code` is its answer (or the transport's)."""

    def __init__(self, code: str, message: str):
        super().__init__(code, message)
        self.code = code
        self.message = message


class SmsSender(Protocol):
    def send(self, phone: str, code: str, out_id: str) -> str:
        """Send `code` to `phone`; `out_id` names the message (the outbox row) so that a
        provider or simulator can tell a resend of the same message. Returns the
        provider's id for it, or raises SmsFailed."""


def percent_encode(value: str) -> str:
    """Aliyun's POP encoding: RFC 3986, only A-Z a-z 0-9 - _ . ~ left as they are (so a
    space is %20, not +, and * is %2A)."""
    return quote(value, safe="-_.~")


def string_to_sign(params: Mapping[str, str], method: str = "GET") -> str:
    canonical = "&".join(f"{percent_encode(k)}={percent_encode(v)}"
                         for k, v in sorted(params.items()) if k != "Signature")
    return f"{method}&{percent_encode('/')}&{percent_encode(canonical)}"


def aliyun_signature(params: Mapping[str, str], access_key_secret: str,
                     method: str = "GET") -> str:
    """Base64(HMAC-SHA1(secret + "&", StringToSign)), as Aliyun's signature method says."""
    digest = hmac.new(f"{access_key_secret}&".encode(), string_to_sign(params, method).encode(),
                      hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _timestamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class AliyunSmsSender:
    """SendSms over HTTPS GET with a signed query. The template is the operator's, approved
    by Aliyun, with one variable `code` (e.g. 您的验证码为${code}，5分钟内有效)."""

    def __init__(self, access_key_id: str, access_key_secret: str, sign_name: str,
                 template_code: str, endpoint: str = ALIYUN_ENDPOINT, timeout_s: float = 5.0,
                 timestamp: Callable[[], str] = _timestamp,
                 nonce: Callable[[], str] = lambda: str(uuid.uuid4())):
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        self.sign_name = sign_name
        self.template_code = template_code
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self._timestamp = timestamp
        self._nonce = nonce
        self.http = requests.Session()

    def signed_params(self, phone: str, code: str, out_id: str) -> dict[str, str]:
        params = {
            "AccessKeyId": self.access_key_id, "Action": "SendSms", "Format": "JSON",
            "OutId": out_id, "PhoneNumbers": phone, "RegionId": "cn-hangzhou",
            "SignName": self.sign_name, "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": self._nonce(), "SignatureVersion": "1.0",
            "TemplateCode": self.template_code,
            "TemplateParam": json.dumps({"code": code}, separators=(",", ":")),
            "Timestamp": self._timestamp(), "Version": "2017-05-25",
        }
        params["Signature"] = aliyun_signature(params, self.access_key_secret)
        return params

    def send(self, phone: str, code: str, out_id: str) -> str:
        try:
            response = self.http.get(self.endpoint, params=self.signed_params(phone, code, out_id),
                                     timeout=self.timeout_s)
            answer = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise SmsFailed("transport", f"{type(exc).__name__}: {exc}") from None
        if answer.get("Code") != "OK":
            raise SmsFailed(str(answer.get("Code", response.status_code)),
                            str(answer.get("Message", "")))
        return str(answer.get("BizId", ""))


def sender_from(config: Mapping) -> AliyunSmsSender:
    """The sender the configuration names (SMS_ENDPOINT is the simulator under `make run`
    and in the tests, Aliyun's endpoint in production)."""
    return AliyunSmsSender(config["SMS_ACCESS_KEY_ID"], config["SMS_ACCESS_KEY_SECRET"],
                           config.get("SMS_SIGN_NAME", messages.zh("platform.name")),
                           config.get("SMS_TEMPLATE_CODE", "SMS_MINQING_CODE"),
                           config.get("SMS_ENDPOINT", ALIYUN_ENDPOINT),
                           float(config.get("SMS_TIMEOUT_S", 5)))
