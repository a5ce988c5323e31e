"""Talking to a partner platform: an interface, and the adapter that speaks Open311.

平安365's own API is not public, so the bridge codes against `PartnerAdapter` and the
one adapter we can write honestly speaks Open311 GeoReport v2 as a client (the district
platforms' usual lingua franca): `POST requests`, `GET requests`, and the widely used
`servicerequestupdates` extension to poll for updates. The simulator
(`simulator.py`) is the server side of exactly this.

Errors are sorted into two: `PartnerUnavailable` (network, timeout, 5xx, and the 4xx that
are about us rather than the request, e.g. 401/403/429: try again later, count against
the circuit) and `PartnerRefused` (400, 409, 422 ...: the partner will never take this
work order as it is; the operator must decide, so it becomes external.rejected).
"""
from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime

import requests
from marshmallow import ValidationError
from nameko.extensions import DependencyProvider

from services.integration365 import domain, schemas

log = logging.getLogger(__name__)

PING_AN_365 = "ping_an_365"
# 4xx answers that say nothing about the work order but about us (credentials, address,
# rate): retried, and alerting while they last, rather than sending every case back.
NOT_ABOUT_THE_REQUEST = frozenset({401, 403, 404, 405, 407, 408, 429})


class PartnerUnavailable(Exception):
    """Transient: the partner did not answer, or answered that it cannot now."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason  # a short label for the failure metric
        self.detail = detail


class PartnerRefused(Exception):
    """Permanent: the partner read the request and said no (4xx)."""


@dataclass(frozen=True)
class RemoteRequest:
    remote_id: str
    status: str                  # Open311: "open" or "closed"
    detail_status: str | None    # the partner's finer status, if it tells (extension)
    notes: str | None            # Open311 status_notes: the result, or the reason
    ref: str | None              # our idempotency key, echoed back (extension)


@dataclass(frozen=True)
class RemoteUpdate:
    update_id: str
    remote_id: str
    status: str
    description: str | None
    updated_at: datetime


class PartnerAdapter(ABC):
    partner: str

    @abstractmethod
    def create(self, ref: str, order: dict) -> str:
        """Open a work order; returns the partner's id for it. `ref` is unique to this
        hand-over: the partner keeps it so that `find` can tell whether a lost answer
        had created one."""

    @abstractmethod
    def find(self, ref: str) -> str | None:
        """The partner's id of the work order opened with `ref`, if there is one."""

    @abstractmethod
    def fetch(self, remote_ids: list[str]) -> dict[str, RemoteRequest]:
        """The partner's current view of these work orders; missing ones are left out."""

    @abstractmethod
    def updates_since(self, since: datetime) -> list[RemoteUpdate]:
        """Every update the partner published at or after `since`, oldest first."""


class Open311Adapter(PartnerAdapter):
    """An Open311 GeoReport v2 client (JSON format).

    Idempotency: the standard has no client token, so our hand-over reference travels
    as a service attribute (`attribute[minqing_ref]`, declared by the partner's service
    definition) and `find` asks `GET requests.json?minqing_ref=...`. That filter is an
    extension we need from the partner (the simulator has it); without it a lost answer
    to a POST could not be told from a lost request.
    """

    def __init__(self, partner: str, base_url: str, timeout_s: float = 10.0,
                 api_key: str | None = None, jurisdiction_id: str | None = None,
                 session: requests.Session | None = None):
        self.partner = partner
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.api_key = api_key
        self.jurisdiction_id = jurisdiction_id
        self.http = session or requests.Session()

    def _call(self, method: str, path: str, **kwargs):
        params = dict(kwargs.pop("params", {}))
        if self.jurisdiction_id:
            params["jurisdiction_id"] = self.jurisdiction_id
        try:
            response = self.http.request(method, f"{self.base_url}/{path}", params=params,
                                         timeout=(self.timeout_s, self.timeout_s), **kwargs)
        except requests.Timeout as exc:
            raise PartnerUnavailable("timeout", str(exc)[:300]) from None
        except requests.ConnectionError as exc:
            raise PartnerUnavailable("connection", str(exc)[:300]) from None
        if response.status_code >= 500 or response.status_code in NOT_ABOUT_THE_REQUEST:
            raise PartnerUnavailable(f"http-{response.status_code}", response.text[:300])
        if response.status_code >= 400:
            raise PartnerRefused(self._error_text(response))
        try:
            return response.json()
        except ValueError:
            raise PartnerUnavailable("bad-response", response.text[:300]) from None

    @staticmethod
    def _error_text(response) -> str:
        """Open311 errors are [{"code": ..., "description": ...}]."""
        try:
            body = response.json()
            return "; ".join(str(e.get("description", e)) for e in body)[:2000] or \
                f"HTTP {response.status_code}"
        except (ValueError, TypeError, AttributeError):
            return f"HTTP {response.status_code}: {response.text[:500]}"

    def create(self, ref: str, order: dict) -> str:
        form = {
            "service_code": order["category"],
            "lat": order["lat"], "long": order["lon"],
            "description": order["description"],
            "attribute[minqing_ref]": ref,
            "attribute[minqing_case_id]": order["case_id"],
        }
        if order.get("address"):
            form["address_string"] = order["address"]
        if order.get("resolve_due_at"):
            form["attribute[minqing_resolve_due_at]"] = order["resolve_due_at"]
        if order.get("attachments"):
            # Object keys in our store; media URLs would need presigned links that
            # outlive the hand-over, which is intake's to give (not done yet).
            form["attribute[minqing_attachments]"] = ",".join(order["attachments"])
        if self.api_key:
            form["api_key"] = self.api_key
        body = self._call("POST", "requests.json", data=form)
        answer = self._first(schemas.Open311Answer(), body)
        if answer.get("service_request_id"):
            return answer["service_request_id"]
        if answer.get("token"):
            # Asynchronous creation (Open311 tokens): resolve it now if we can; if not,
            # this attempt counts as failed and the next one `find`s it by our ref.
            remote_id = self._resolve_token(answer["token"])
            if remote_id:
                return remote_id
            raise PartnerUnavailable("token-pending", f"token {answer['token']} not resolved")
        raise PartnerUnavailable("bad-response", f"no service_request_id in {body!r}"[:300])

    @staticmethod
    def _first(schema, body) -> dict:
        """The first item of an Open311 list answer, loaded with `schema`."""
        if not isinstance(body, list) or not body:
            raise PartnerUnavailable("bad-response", f"expected a list, got {body!r}"[:300])
        try:
            return schema.load(body[0])
        except ValidationError as exc:
            raise PartnerUnavailable("bad-response", str(exc.messages)[:300]) from None

    def _items(self, schema, body, what: str) -> list[dict]:
        """Every well-formed item of a list answer; a malformed one is logged and skipped
        (one bad record must not hide the others)."""
        if not isinstance(body, list):
            raise PartnerUnavailable("bad-response", f"expected a list of {what}")
        items = []
        for item in body:
            try:
                items.append(schema.load(item))
            except (ValidationError, TypeError) as exc:
                log.warning("%s: skipped a malformed %s %r: %s", self.partner, what,
                            item, getattr(exc, "messages", exc))
        return items

    def _resolve_token(self, token: str) -> str | None:
        body = self._call("GET", f"tokens/{token}.json")
        return self._first(schemas.Open311Answer(), body).get("service_request_id")

    def find(self, ref: str) -> str | None:
        body = self._call("GET", "requests.json", params={"minqing_ref": ref})
        items = self._items(schemas.Open311Request(), body, "request")
        return items[0]["service_request_id"] if items else None

    def fetch(self, remote_ids: list[str]) -> dict[str, RemoteRequest]:
        if not remote_ids:
            return {}
        body = self._call("GET", "requests.json",
                          params={"service_request_id": ",".join(remote_ids)})
        return {i["service_request_id"]: RemoteRequest(
                    i["service_request_id"], i["status"].lower(), i["detail_status"],
                    i["status_notes"], i["minqing_ref"])
                for i in self._items(schemas.Open311Request(), body, "request")}

    def updates_since(self, since: datetime) -> list[RemoteUpdate]:
        body = self._call("GET", "servicerequestupdates.json",
                          params={"start_date": since.isoformat()})
        if isinstance(body, dict):  # some servers wrap the list
            body = body.get("service_request_updates", [])
        updates = [RemoteUpdate(i["update_id"], i["service_request_id"], i["status"],
                                i["description"], i["updated_datetime"])
                   for i in self._items(schemas.Open311Update(), body, "update")]
        return sorted(updates, key=lambda u: (u.updated_at, u.update_id))


@dataclass
class Partner:
    """What a worker sees as `self.partner`: the adapter, and the process's circuit
    breaker and backoff for it."""

    adapter: PartnerAdapter
    breaker: domain.CircuitBreaker
    backoff: domain.Backoff
    timeout_s: float

    @property
    def name(self) -> str:
        return self.adapter.partner


class PartnerLink(DependencyProvider):
    """Builds the partner adapter from config (PINGAN365_*) once per process, so the
    circuit breaker's memory outlives a single worker."""

    def setup(self) -> None:
        config = self.container.config
        p = config.get("PINGAN365", {})
        timeout = float(p.get("TIMEOUT_S", 10))
        self.partner = Partner(
            adapter=Open311Adapter(PING_AN_365, p["URL"], timeout_s=timeout,
                                   api_key=p.get("API_KEY") or None,
                                   jurisdiction_id=p.get("JURISDICTION_ID") or None),
            breaker=domain.CircuitBreaker(threshold=int(p.get("CIRCUIT_THRESHOLD", 5)),
                                          cooldown_s=float(p.get("CIRCUIT_COOLDOWN_S", 30))),
            backoff=domain.Backoff(base_s=float(p.get("BACKOFF_BASE_S", 2)),
                                   cap_s=float(p.get("BACKOFF_CAP_S", 300))),
            timeout_s=timeout)

    def get_dependency(self, worker_ctx) -> Partner:
        return self.partner
