"""HTTP for every service: one entrypoint that speaks problem+json, and ops endpoints.

`http` replaces nameko's: a Problem becomes its RFC 9457 body, anything unexpected a
500 problem (logged with its traceback, never shown), and unknown routes or methods
get problem bodies too. Every request body is size-limited here, once for all routes,
before anything reads it (MAX_BODY_BYTES, default 1 MiB; a route may ask for less with
`@http(..., max_body_bytes=N)`): a larger one is a 413 problem without being read.
`OpsEndpoints` is mixed into every service for `/metrics`, `/health/live` and
`/health/ready`.
"""
from __future__ import annotations

import json
import logging
import time
import uuid

import sqlalchemy as sa
from kombu import Connection
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer, WsgiApp
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Request, Response

from minqing_kernel import messages
from minqing_kernel.errors import Problem, TooLarge, title
from minqing_kernel.metrics import HTTP_SECONDS, REQUESTS_REFUSED

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"

# Statuses with a detail of their own (`http-detail.<status>`); the others repeat the title.
STATUS_DETAILS = (404, 405)


def json_response(body, status: int = 200, headers: dict | None = None,
                  mimetype: str = "application/json") -> Response:
    text = json.dumps(body, ensure_ascii=False, default=str)
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate echoed from input: escape, never fail
        data = json.dumps(body, ensure_ascii=True, default=str).encode("ascii")
    return Response(data, status=status, mimetype=mimetype, headers=headers)


def problem_response(problem: Problem, instance: str | None = None) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if problem.status == 401 else {}
    if getattr(problem, "retry_after_s", None) is not None:  # the body says it too
        headers["Retry-After"] = str(problem.retry_after_s)
    return json_response(problem.to_problem(instance), problem.status, headers or None,
                         PROBLEM_JSON)


def status_problem(status: int) -> Response:
    title_en, title_zh = title(status)[1:]
    detail_en, detail_zh = (messages.say(f"http-detail.{status}") if status in STATUS_DETAILS
                            else (title_en, title_zh))[-2:]
    body = {"type": f"/problems/http-{status}", "title": title_en, "title_zh": title_zh,
            "status": status, "detail": detail_en, "detail_zh": detail_zh}
    return json_response(body, status, mimetype=PROBLEM_JSON)


QUIET_ROUTES = ("/metrics", "/health/live", "/health/ready")
DEFAULT_MAX_BODY_BYTES = 1024 * 1024


def body_too_large(limit: int) -> TooLarge:
    return TooLarge.of("kernel.body-too-large", limit=limit, code="body-too-large")


def client_address(environ, trusted_proxies: int = 0) -> str:
    """Who is asking, for per-client limits: the peer's address, or with `trusted_proxies`
    reverse proxies in front of us (an Ingress, a load balancer), the address the
    outermost of them saw. Only the entries our own proxies appended are believed: a
    client can put anything in the left part of X-Forwarded-For, never in the right."""
    peer = environ.get("REMOTE_ADDR") or "unknown"
    if trusted_proxies <= 0:
        return peer
    hops = [h.strip() for h in environ.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
    if not hops:
        return peer
    return hops[-trusted_proxies] if len(hops) >= trusted_proxies else hops[0]


def correlation_id_from(environ) -> str:
    """The client's X-Request-Id if it is a sane token, else a new id."""
    given = environ.get("HTTP_X_REQUEST_ID", "")
    if 0 < len(given) <= 100 and all(c.isalnum() or c in "-_.:" for c in given):
        return given
    return str(uuid.uuid4())


class ProblemWsgiApp(WsgiApp):
    """nameko's WSGI app, plus: routing errors (404, 405) answer in problem+json; every
    request gets a correlation id (returned as X-Request-Id), an access-log line and a
    latency observation by route."""

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        cid = environ["minqing.correlation_id"] = correlation_id_from(environ)
        request = Request(environ, shallow=True)
        adapter = self.url_map.bind_to_environ(environ)
        route = "unmatched"
        try:
            rule, values = adapter.match(return_rule=True)
            route = environ["minqing.route"] = rule.rule
            request.path_values = values
            limit = (getattr(rule.endpoint, "max_body_bytes", None)
                     or int(self.server.container.config.get("MAX_BODY_BYTES",
                                                             DEFAULT_MAX_BODY_BYTES)))
            if (request.content_length or 0) > limit:
                # Refused on its Content-Length, unread; the connection is closed rather
                # than drained, so a 10 MB body costs us the headers only.
                REQUESTS_REFUSED.labels(route, "body-too-large").inc()
                log.warning("%s %s refused: a body of %d bytes, over the %d allowed",
                            environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"),
                            request.content_length, limit, extra={"correlation_id": cid})
                response = problem_response(body_too_large(limit))
                response.headers["Connection"] = "close"
            else:
                # A body without a Content-Length (chunked) is cut off at the limit as it
                # is read (werkzeug raises 413).
                request.max_content_length = limit
                response = rule.endpoint.handle_request(request)
        except HTTPException as exc:
            response = status_problem(exc.code or 500)
            if getattr(exc, "valid_methods", None):  # a 405 says what is allowed (RFC 9110)
                response.headers["Allow"] = ", ".join(exc.valid_methods)
        response.headers["X-Request-Id"] = cid
        # Bodies are data, never markup: a browser must not guess otherwise.
        response.headers["X-Content-Type-Options"] = "nosniff"
        elapsed = time.perf_counter() - started
        method = environ.get("REQUEST_METHOD", "")
        HTTP_SECONDS.labels(method, route, str(response.status_code)).observe(elapsed)
        if route not in QUIET_ROUTES:
            log.info("%s %s %d %.1f ms", method, environ.get("PATH_INFO"),
                     response.status_code, elapsed * 1000,
                     extra={"correlation_id": cid, "status": response.status_code,
                            "route": route, "duration_ms": round(elapsed * 1000, 1)})
        return response(environ, start_response)


class ProblemWebServer(WebServer):
    def get_wsgi_app(self):
        return ProblemWsgiApp(self)

    def context_data_from_headers(self, request):
        return {"correlation_id": request.environ["minqing.correlation_id"]}


class HttpEntrypoint(HttpRequestHandler):
    server = ProblemWebServer()

    def __init__(self, method, url, max_body_bytes: int | None = None, **kwargs):
        self.max_body_bytes = max_body_bytes
        super().__init__(method, url, **kwargs)

    def response_from_exception(self, exc):
        if isinstance(exc, Problem):
            return problem_response(exc)
        if isinstance(exc, HTTPException) and exc.code == 413:
            return problem_response(body_too_large(self.max_body_bytes or int(
                self.container.config.get("MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES))))
        if isinstance(exc, HTTPException) and exc.code and exc.code < 500:
            return status_problem(exc.code)
        log.error("unexpected error in %s: %r", self.method_name, exc, exc_info=exc)
        return status_problem(500)


http = HttpEntrypoint.decorator


class OpsEndpoints:
    """Mixin: /metrics and health. Readiness checks the broker, and the database if the
    service has one (`self.db`); it expects `self.config`."""

    @http("GET", "/metrics")
    def metrics(self, request):
        return Response(generate_latest(), mimetype=CONTENT_TYPE_LATEST.split(";")[0])

    @http("GET", "/health/live")
    def live(self, request):
        return json_response({"status": "live"})

    @http("GET", "/health/ready")
    def ready(self, request):
        checks = {"broker": "ok"}
        if getattr(self, "db", None) is not None:
            checks["database"] = "ok"
            try:
                with self.db.engine.connect() as conn:
                    conn.execute(sa.text("SELECT 1"))
            except Exception as exc:
                checks["database"] = f"down: {type(exc).__name__}"
        try:
            with Connection(self.config["AMQP_URI"], connect_timeout=2) as conn:
                conn.ensure_connection(max_retries=1)
        except Exception as exc:
            checks["broker"] = f"down: {type(exc).__name__}"
        ok = all(v == "ok" for v in checks.values())
        return json_response({"status": "ready" if ok else "not-ready", "checks": checks},
                             200 if ok else 503)
