"""A 平安365 simulator: the server side of Open311 GeoReport v2, with knobs.

    python -m services.integration365.simulator --address 127.0.0.1:8005 --state FILE

`make run` starts it as the default district platform; the tests start it too and flip
its knobs at run time. It is a small threaded Werkzeug server, its own process, with its
state in memory and saved to a JSON file after every change (so a test can SIGKILL and
restart it, as a partner would go down, without losing the work orders).

Open311 (under /open311/v2, JSON only):
    GET  services.json                     the service list
    POST requests.json                     open a work order (form fields, attribute[...])
    GET  requests.json                     ?service_request_id=a,b  or  ?minqing_ref=R
                                           (the latter: an extension the bridge needs)
    GET  requests/<id>.json
    GET  tokens/<token>.json               when answering POSTs with tokens
    GET  servicerequestupdates.json        ?start_date=ISO: the updates extension

Admin (always answers, whatever the knobs; every /_sim call needs the header
`Authorization: Bearer $PINGAN365_SIM_TOKEN`, which `make run` generates per
installation in .run/pingan365-sim-token; without the variable set, /_sim refuses all):
    GET/POST /_sim/config   {fail_rate, error_status, delay_s, down, lose_responses,
                             auto_progress, step_s, reject_when, answer_with_token}
    GET  /_sim/requests     every work order, with its attributes and updates
    POST /_sim/requests/<id>/advance      the next step now (accepted, in progress, fixed)
    POST /_sim/requests/<id>/reject       {"reason": ...}
    POST /_sim/requests/<id>/close_silently  {"result": ...}  closed, no update published
    DELETE /_sim/requests/<id>            the partner "loses" it
    POST /_sim/reset        forget everything, default knobs
    GET  /health

Work orders advance by themselves when auto_progress is on, one step every step_s:
ACTION_SCHEDULED (accepted) → IN_PROGRESS → FIXED (closed, with a result), or
NOT_COUNCILS_RESPONSIBILITY (closed, rejected) if the description contains reject_when.
"""
from __future__ import annotations

import argparse
import hmac
import json
import os
import random
import socket
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from services.integration365.schemas import SimulatorKnobs

DEFAULTS = {
    "fail_rate": 0.0,        # share of Open311 calls answered with error_status
    "error_status": 503,
    "delay_s": 0.0,          # added before every Open311 answer (slow partner)
    "down": False,           # every Open311 call has its connection reset
    "lose_responses": 0,     # the next N POSTs create the work order, then drop the answer
    "auto_progress": True,
    "step_s": 3.0,
    "reject_when": "",       # a description containing this is rejected, not accepted
    "answer_with_token": False,
}
STEPS = [("ACTION_SCHEDULED", "open", "平安365 已受理，已派发至属地网格"),
         ("IN_PROGRESS", "open", "平安365 属地单位处置中"),
         ("FIXED", "closed", "平安365 已办结：属地单位已现场处置完毕")]
SERVICES = [{"service_code": code, "service_name": name, "type": "realtime",
             "metadata": True, "keywords": "", "group": "平安365", "description": name}
            for code, name in (("dispute-noise", "噪音扰民"), ("hazard-facility", "设施隐患"),
                               ("property", "物业纠纷"), ("other", "其他"))]


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def parse_time(value: str) -> datetime:
    # A '+' in a query string that was not percent-encoded arrives as a space.
    return datetime.fromisoformat(value.strip().replace(" ", "+").replace("Z", "+00:00"))


class Platform:
    """The simulated partner's state; every method holds the lock."""

    def __init__(self, state_file: Path | None):
        self.lock = threading.RLock()
        self.state_file = state_file
        self.config = dict(DEFAULTS)
        self.requests: dict[str, dict] = {}
        self.updates: list[dict] = []
        self.tokens: dict[str, str] = {}
        self.seq = 0
        self.update_seq = 0
        if state_file and state_file.exists():
            saved = json.loads(state_file.read_text(encoding="utf-8"))
            self.config.update(saved["config"])
            self.requests, self.updates = saved["requests"], saved["updates"]
            self.tokens, self.seq = saved["tokens"], saved["seq"]
            self.update_seq = saved["update_seq"]

    def save(self) -> None:
        if not self.state_file:
            return
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({
            "config": self.config, "requests": self.requests, "updates": self.updates,
            "tokens": self.tokens, "seq": self.seq, "update_seq": self.update_seq},
            ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, self.state_file)

    def create(self, form: dict, attributes: dict) -> dict:
        with self.lock:
            self.seq += 1
            rid = f"PA365-{self.seq:06d}"
            at = now_iso()
            self.requests[rid] = {
                "service_request_id": rid, "status": "open", "detail_status": "SUBMITTED",
                "status_notes": None, "service_code": form.get("service_code"),
                "description": form.get("description"), "lat": form.get("lat"),
                "long": form.get("long"), "address": form.get("address_string"),
                "requested_datetime": at, "updated_datetime": at,
                "minqing_ref": attributes.get("minqing_ref"), "attributes": attributes,
                "step": 0, "next_step_at": time.time() + float(self.config["step_s"]),
            }
            self.save()
            return self.requests[rid]

    def advance(self, rid: str, status: str | None = None, note: str | None = None,
                publish: bool = True) -> dict:
        """The next step of a work order (or the given one), with its update."""
        with self.lock:
            req = self.requests[rid]
            if req["status"] == "closed":
                return req
            if status is None:
                reject = self.config["reject_when"]
                if req["step"] == 0 and reject and reject in (req["description"] or ""):
                    status, state, default = ("NOT_COUNCILS_RESPONSIBILITY", "closed",
                                              "不属于平安365处置范围，退回街道")
                else:
                    status, state, default = STEPS[req["step"]]
                    req["step"] += 1
            else:
                state = "closed" if status in ("FIXED", "CLOSED", "NOT_COUNCILS_RESPONSIBILITY",
                                               "NO_FURTHER_ACTION", "DUPLICATE") else "open"
                default = status
            note = note or default
            at = now_iso()
            req.update(status=state, detail_status=status, updated_datetime=at,
                       next_step_at=time.time() + float(self.config["step_s"]))
            if state == "closed":
                req["status_notes"] = note
            if publish:
                self.update_seq += 1
                self.updates.append({"update_id": f"U{self.update_seq:08d}",
                                     "service_request_id": rid, "status": status,
                                     "description": note, "updated_datetime": at,
                                     "media_url": None})
            self.save()
            return req

    def tick(self) -> None:
        with self.lock:
            if not self.config["auto_progress"]:
                return
            due = [rid for rid, r in self.requests.items()
                   if r["status"] == "open" and r["next_step_at"] <= time.time()]
            for rid in due:
                self.advance(rid)

    def public(self, req: dict) -> dict:
        """A work order as Open311 GET requests shows it."""
        return {"service_request_id": req["service_request_id"], "status": req["status"],
                "status_notes": req["status_notes"], "service_code": req["service_code"],
                "description": req["description"], "lat": req["lat"], "long": req["long"],
                "address": req["address"], "requested_datetime": req["requested_datetime"],
                "updated_datetime": req["updated_datetime"],
                "detail_status": req["detail_status"], "minqing_ref": req["minqing_ref"]}


def open311_error(status: int, description: str) -> Response:
    return Response(json.dumps([{"code": status, "description": description}],
                               ensure_ascii=False), status=status,
                    mimetype="application/json")


def as_json(body, status: int = 200) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status=status,
                    mimetype="application/json")


class DropConnection(Exception):
    """Reset the client's connection instead of answering."""


def admin_refusal(request, token: str) -> Response | None:
    """Why an /_sim call is refused, or None. The knobs can take the partner down and
    /_sim/requests shows every work order, so they are not for whoever reaches the port."""
    if not token:
        return as_json({"error": "the simulator's admin API is off: start it with "
                                 "PINGAN365_SIM_TOKEN set"}, 403)
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                             token.encode()):
        print(f"refused {request.method} {request.path} from {request.remote_addr}: "
              "no or a wrong admin token", flush=True)
        response = as_json({"error": "Authorization: Bearer <PINGAN365_SIM_TOKEN> "
                                     "required"}, 401)
        response.headers["WWW-Authenticate"] = 'Bearer realm="pingan365-sim"'
        return response
    return None


class Simulator:
    def __init__(self, platform: Platform, admin_token: str = ""):
        self.p = platform
        self.admin_token = admin_token
        self.rng = random.Random()
        self.url_map = Map([
            Rule("/health", endpoint="health"),
            Rule("/open311/v2/services.json", endpoint="services"),
            Rule("/open311/v2/requests.json", endpoint="requests", methods=["GET", "POST"]),
            Rule("/open311/v2/requests/<rid>.json", endpoint="request"),
            Rule("/open311/v2/tokens/<token>.json", endpoint="token"),
            Rule("/open311/v2/servicerequestupdates.json", endpoint="updates"),
            Rule("/_sim/config", endpoint="config", methods=["GET", "POST"]),
            Rule("/_sim/requests", endpoint="sim_requests"),
            Rule("/_sim/requests/<rid>", endpoint="sim_forget", methods=["DELETE"]),
            Rule("/_sim/requests/<rid>/<command>", endpoint="sim_command", methods=["POST"]),
            Rule("/_sim/reset", endpoint="reset", methods=["POST"]),
        ])

    def __call__(self, environ, start_response):
        request = Request(environ)
        try:
            endpoint, values = self.url_map.bind_to_environ(environ).match()
            if request.path.startswith("/open311/"):
                response = self.knobs(request) or getattr(self, f"on_{endpoint}")(
                    request, **values)
            elif request.path.startswith("/_sim/"):
                response = admin_refusal(request, self.admin_token) or getattr(
                    self, f"on_{endpoint}")(request, **values)
            else:
                response = getattr(self, f"on_{endpoint}")(request, **values)
        except DropConnection:
            self.drop_connection(environ)
            start_response("500 Dropped", [])
            return []
        except NotFound:
            response = open311_error(404, "not found")
        except HTTPException as exc:
            response = open311_error(exc.code or 500, exc.description or "error")
        return response(environ, start_response)

    @staticmethod
    def drop_connection(environ) -> None:
        """Hang up without a word: the client sees its connection closed (werkzeug's
        own attempt to answer then meets a dead socket and gives up quietly)."""
        sock = environ.get("werkzeug.socket")
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def knobs(self, request) -> Response | None:
        c = self.p.config
        if c["down"]:
            raise DropConnection
        if c["delay_s"]:
            time.sleep(float(c["delay_s"]))
        if c["fail_rate"] and self.rng.random() < float(c["fail_rate"]):
            return open311_error(int(c["error_status"]), "平安365 暂时不可用 (simulated)")
        return None

    # --- Open311 ---

    def on_health(self, request):
        return as_json({"status": "ok"})

    def on_services(self, request):
        return as_json(SERVICES)

    def on_requests(self, request):
        if request.method == "POST":
            return self.create(request)
        with self.p.lock:
            if request.args.get("service_request_id"):
                ids = request.args["service_request_id"].split(",")
                found = [self.p.requests[i] for i in ids if i in self.p.requests]
            elif request.args.get("minqing_ref"):
                ref = request.args["minqing_ref"]
                found = [r for r in self.p.requests.values() if r["minqing_ref"] == ref]
            else:
                found = list(self.p.requests.values())[-1000:]
            return as_json([self.p.public(r) for r in found])

    def create(self, request):
        form = request.form
        missing = [f for f in ("service_code", "description") if not form.get(f)]
        if missing:
            return open311_error(400, f"missing {', '.join(missing)}")
        if not ((form.get("lat") and form.get("long")) or form.get("address_string")):
            return open311_error(400, "a location (lat and long, or address_string) is "
                                      "required")
        attributes = {k[len("attribute["):-1]: v for k, v in form.items()
                      if k.startswith("attribute[") and k.endswith("]")}
        req = self.p.create(dict(form), attributes)
        with self.p.lock:
            lose = int(self.p.config["lose_responses"])
            if lose > 0:
                self.p.config["lose_responses"] = lose - 1
                self.p.save()
        if lose > 0:
            raise DropConnection  # created, but the client never hears so
        if self.p.config["answer_with_token"]:
            token = f"T-{req['service_request_id']}"
            with self.p.lock:
                self.p.tokens[token] = req["service_request_id"]
                self.p.save()
            return as_json([{"token": token}], 201)
        return as_json([{"service_request_id": req["service_request_id"],
                         "service_notice": "平安365 已收到工单"}], 201)

    def on_request(self, request, rid):
        with self.p.lock:
            if rid not in self.p.requests:
                return open311_error(404, f"no service request {rid}")
            return as_json([self.p.public(self.p.requests[rid])])

    def on_token(self, request, token):
        with self.p.lock:
            rid = self.p.tokens.get(token)
        if rid is None:
            return open311_error(404, f"no token {token}")
        return as_json([{"token": token, "service_request_id": rid}])

    def on_updates(self, request):
        try:
            since = parse_time(request.args["start_date"]) if "start_date" in request.args \
                else None
            until = parse_time(request.args["end_date"]) if "end_date" in request.args \
                else None
        except ValueError:
            return open311_error(400, "start_date and end_date are ISO 8601 date-times")
        with self.p.lock:
            found = [u for u in self.p.updates
                     if (since is None or parse_time(u["updated_datetime"]) >= since)
                     and (until is None or parse_time(u["updated_datetime"]) <= until)]
        return as_json(found)

    # --- admin ---

    def on_config(self, request):
        if request.method == "POST":
            try:
                changes = SimulatorKnobs().load(request.get_json(silent=True) or {})
            except ValidationError as exc:
                return as_json({"error": exc.messages, "knobs": sorted(DEFAULTS)}, 400)
            with self.p.lock:
                self.p.config.update(changes)
                self.p.save()
        return as_json(self.p.config)

    def on_sim_requests(self, request):
        with self.p.lock:
            return as_json({"requests": list(self.p.requests.values()),
                            "updates": self.p.updates})

    def on_sim_forget(self, request, rid):
        with self.p.lock:
            if self.p.requests.pop(rid, None) is None:
                return as_json({"error": f"no {rid}"}, 404)
            self.p.save()
        return as_json({"forgotten": rid})

    def on_sim_command(self, request, rid, command):
        body = request.get_json(silent=True) or {}
        if rid not in self.p.requests:
            return as_json({"error": f"no {rid}"}, 404)
        if command == "advance":
            return as_json(self.p.advance(rid, body.get("status"), body.get("note")))
        if command == "reject":
            return as_json(self.p.advance(rid, "NOT_COUNCILS_RESPONSIBILITY",
                                          body.get("reason") or "不属于平安365处置范围"))
        if command == "close_silently":
            return as_json(self.p.advance(rid, "FIXED", body.get("result"), publish=False))
        return as_json({"error": f"unknown command {command}"}, 404)

    def on_reset(self, request):
        with self.p.lock:
            self.p.config = dict(DEFAULTS)
            self.p.requests, self.p.updates, self.p.tokens = {}, [], {}
            self.p.save()
        return as_json(self.p.config)


def serve(address: str, state_file: Path | None) -> None:
    host, port = address.rsplit(":", 1)
    platform = Platform(state_file)
    server = make_server(host, int(port),
                         Simulator(platform, os.environ.get("PINGAN365_SIM_TOKEN", "")),
                         threaded=True)

    def ticker():
        while True:
            time.sleep(0.1)
            platform.tick()

    threading.Thread(target=ticker, daemon=True, name="ticker").start()
    print(f"平安365 simulator on http://{address}/open311/v2 (state {state_file})",
          flush=True)
    server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", default=os.environ.get("PINGAN365_SIM_ADDRESS",
                                                            "127.0.0.1:8005"))
    parser.add_argument("--state", type=Path, default=None,
                        help="a JSON file to keep the state in across restarts")
    args = parser.parse_args(argv)
    serve(args.address, args.state)
    return 0


if __name__ == "__main__":
    sys.exit(main())
