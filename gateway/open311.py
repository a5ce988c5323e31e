"""Our Open311 GeoReport v2 server, at /open311/v2/ (http://wiki.open311.org/GeoReport_v2).

So that existing 311 clients and partner platforms can read what happens to reports, and
partners can file them. Mapped onto what we have:

- a *service* is a report category (intake's catalogue); its *service definition* lists
  the category's extra questions as Open311 attributes;
- a *service request* is a report; `service_request_id` is the report id. Its `status` is
  its case's in Open311's two words: closed, rejected and merged are `closed`, anything
  else (and a report whose case dispatch has not opened yet) is `open`. `status_notes` is
  the case's result, or the latest note a member of staff wrote; `expected_datetime` the
  case's resolve deadline, else its accept deadline; `updated_datetime` when the case last
  changed; `agency_responsible` the unit handling it. Nobody's identity is in any answer:
  no reporter, no phone number, no staff names;
- `servicerequestupdates` (mySociety's widely used extension) gives one update per step
  of a case's audit trail in a time range.

Decisions, where the spec leaves room:
- Every resource takes the format as its suffix, `.json` or `.xml` (XML is the spec's
  required format, JSON is offered too and named in discovery). Another suffix is a 404,
  answered in XML.
- One jurisdiction, `wangjiang`: `jurisdiction_id` may be left out; any other value is a
  404, as the spec asks.
- Errors are the spec's `[{"code", "description"}]` / `<errors><error>…`, one error,
  `code` equal to the HTTP status: 404 for what does not exist, 403 for a missing or bad
  api_key, 400 for any other refusal (our 409/413/415/422 become 400). Two statuses a
  client can act on keep their meaning: 429 (with Retry-After) and 503; a fault of ours
  is 500. `description` is in Chinese, or in English when Accept-Language prefers it; so
  are service names, descriptions and attribute prompts.
- GET is public, as the spec has it. POST requests needs a partner's api_key (identity
  keeps them hashed), counts against the partner's report rate like any reporter's, and
  is idempotent with an Idempotency-Key header as /v1/reports is. Our requests are
  `realtime`: the POST answers with the service_request_id at once (status 200, as the
  spec's examples and most servers do). A token is the submission id, which is the
  report id, so tokens/{token} resolves it for clients written for batch servers.
- POST takes lat & long (a report must be placed on the map: address_string alone is
  refused), description (5 to 2000 characters, as in the app), address_string as the
  address, and attribute[code] answers. The submitter's email, names, phone, device_id
  and account_id are not stored: the partner keeps its residents' contacts, we keep none
  we do not need. A posted media_url is not fetched (we do not download from URLs a
  caller names) and not stored.
- media_url in GET requests: the report's first photo (never video or voice) as a
  presigned GET that expires after OPEN311_MEDIA_URL_TTL_S (1 hour), minted on each
  read; null without a photo. Reads are public, so no link lasts (services/intake/
  media.py). Updates carry media_url null.
- GET requests: without service_request_id, requests submitted in the last 90 days, or
  a start_date/end_date range of at most 90 days; at most 1000 a page, newest first.
  `page` (from 1) and `page_size` (1 to 1000, default 1000) page through them; a client
  paging should pin end_date, or new requests shift the pages. service_request_id (up to
  1000, comma separated) overrides every other filter, as the spec says.
- Times are w3 format in UTC to the second (2026-11-30T08:15:30Z).
"""
from __future__ import annotations

import functools
import logging
import re
from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree as ET

from prometheus_client import Counter
from werkzeug.wrappers import Response

from gateway.ratelimit import too_many_reports
from gateway.submission import submission_id
from minqing_kernel import messages
from minqing_kernel.errors import Problem
from minqing_kernel.ids import uuid_or_none
from minqing_kernel.web import http, json_response

log = logging.getLogger(__name__)

PREFIX = "/open311/v2"
SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
JURISDICTION = "wangjiang"
# When the service list or a definition last changed shape (Service Discovery's changeset).
CHANGESET = "2026-11-30T00:00:00Z"
CONTENT_TYPES = {"xml": "text/xml; charset=utf-8", "json": "application/json; charset=utf-8"}
DEFAULT_SPAN = timedelta(days=90)
MAX_PAGE_SIZE = 1000
MAX_IDS = 1000
# GET requests with a status filter walks the date range in chunks of this many reports,
# asking dispatch for their states, up to SCAN_LIMIT reports (a subdistrict files ~4,500
# in 90 days). A city-wide deployment would keep an Open311 read model fed by the events
# instead; the API would not change.
SCAN_CHUNK = 1000
SCAN_LIMIT = 100_000
# In XML, a list's elements are named by what holds them.
ITEM_NAMES = {"services": "service", "attributes": "attribute", "values": "value",
              "endpoints": "endpoint", "formats": "format", "service_requests": "request",
              "errors": "error", "service_request_updates": "request_update"}
LIST_TYPES = ("singlevaluelist", "multivaluelist")
# Characters XML 1.0 cannot carry at all (a report's text is stored as sent).
NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'
STATUS_FILTER = re.compile(r"(open|closed)(,(open|closed))?")
ATTRIBUTE_FIELD = re.compile(r"^attribute\[([^\[\]]{1,60})\](\[\])?$")

ERRORS = Counter("minqing_open311_errors_total",
                 "Open311 requests answered with an error, by endpoint and HTTP status",
                 ["endpoint", "status"])
SUBMITTED = Counter("minqing_open311_requests_submitted_total",
                    "Service requests filed through Open311, by partner", ["partner"])


class Open311Error(Exception):
    """A refusal in Open311's terms: an HTTP status and what to say, in both languages."""

    def __init__(self, status: int, en: str, zh: str, retry_after_s: int | None = None):
        super().__init__(en)
        self.status, self.en, self.zh, self.retry_after_s = status, en, zh, retry_after_s


def bad_request(key: str, **params) -> Open311Error:
    """400 with the catalogue's message `key` (contracts/messages.yaml)."""
    return Open311Error(400, *messages.say(key, **params)[1:])


def not_found(key: str, **params) -> Open311Error:
    return Open311Error(404, *messages.say(key, **params)[1:])


def from_problem(problem: Problem) -> Open311Error:
    """A service's problem as the spec's error: 404 stays, 401/403 are 403, 429 and 503
    keep their meaning, everything else the client sent is 400."""
    status = problem.status
    if status in (401, 403):
        status = 403
    elif status not in (404, 429, 503) and status < 500:
        status = 400
    return Open311Error(status, problem.detail_en, problem.detail_zh,
                        getattr(problem, "retry_after_s", None))


# --- rendering ------------------------------------------------------------------------

def xml_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return NOT_XML.sub("\ufffd", str(value))


def _xml_into(parent: ET.Element, name: str, value) -> None:
    element = ET.SubElement(parent, name)
    if isinstance(value, dict):
        for key, sub in value.items():
            _xml_into(element, key, sub)
    elif isinstance(value, list):
        for item in value:
            _xml_into(element, ITEM_NAMES.get(name, "item"), item)
    else:
        element.text = xml_text(value)


def to_xml(root: str, body) -> bytes:
    """The spec's XML for a JSON-shaped body (the Spark convention read backwards): a
    list's items are elements named after the list, booleans true/false, null empty."""
    holder = ET.Element("holder")
    _xml_into(holder, root, body)
    # The declaration written out: ElementTree's uses single quotes, which some 311 clients
    # match literally against the spec's encoding="UTF-8".
    return XML_DECLARATION + ET.tostring(holder[0], encoding="unicode").encode("utf-8")


def render(fmt: str, root: str, body, status: int = 200, headers: dict | None = None):
    if fmt == "json":
        response = json_response(body, status, headers)
    else:
        response = Response(to_xml(root, body), status=status, headers=headers)
    response.headers["Content-Type"] = CONTENT_TYPES[fmt]
    return response


def error_response(fmt: str, error: Open311Error, lang: str) -> Response:
    headers = {"Retry-After": str(error.retry_after_s)} if error.retry_after_s else None
    description = error.zh if lang == "zh" else error.en
    return render(fmt, "errors", [{"code": error.status, "description": description}],
                  error.status, headers)


def language(request) -> str:
    """Chinese first, as everything a person reads here; English if the client prefers it."""
    return request.accept_languages.best_match(["zh", "en"], default="zh")


def w3(value: str | datetime | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- parsing --------------------------------------------------------------------------

def parse_w3(name: str, raw: str | None) -> datetime | None:
    # Only an absent parameter is "no date": `start_date=` is a date that is not one
    # (the document's `format: date-time` refuses it), not a request for the default.
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        value = None
    if value is None or value.tzinfo is None or "T" not in raw:
        raise bad_request("open311.bad-datetime", name=name)
    return value.astimezone(UTC)


def date_window(args, now: datetime) -> tuple[datetime, datetime]:
    """[start, end] of at most 90 days; the most recent 90 days by default."""
    start, end = parse_w3("start_date", args.get("start_date")), \
        parse_w3("end_date", args.get("end_date"))
    if start is None and end is None:
        end = now
    if start is None:
        start = end - DEFAULT_SPAN
    if end is None:
        end = start + DEFAULT_SPAN
    if end < start:
        raise bad_request("open311.end-before-start")
    if end - start > DEFAULT_SPAN:
        raise bad_request("open311.span-too-long")
    return start, end


def paging(args) -> tuple[int, int]:
    """(offset, page_size) from page (from 1) and page_size (1 to 1000, default 1000)."""
    def whole(name: str, default: int, low: int, high: int) -> int:
        raw = args.get(name)
        if raw is None:  # absent; `page=` is not a number, so it is refused below
            return default
        if not re.fullmatch(r"\d{1,9}", raw) or not low <= int(raw) <= high:
            raise bad_request("open311.bad-whole-number", name=name, low=low,
                              high=high)
        return int(raw)
    size = whole("page_size", MAX_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    page = whole("page", 1, 1, 10**6)
    return (page - 1) * size, size


def comma_list(args, name: str) -> list[str]:
    values = []
    for raw in args.getlist(name):
        values += [v.strip() for v in raw.split(",") if v.strip()]
    return list(dict.fromkeys(values))


def report_id(raw: str, what: str = "service-request") -> str:
    """`raw` as a report id, or 404 naming `what` (a noun.* key of the catalogue)."""
    parsed = uuid_or_none(raw)
    if parsed is None:
        noun = messages.say(f"noun.{what}")
        raise not_found("open311.not-found", what_en=noun.en, raw=raw, what_zh=noun.zh)
    return parsed


def attribute_answers(form) -> dict:
    """attribute[code]=value and attribute[code][]=v1&attribute[code][]=v2 (a multivaluelist)
    as {code: value or [values]}."""
    answers: dict = {}
    for key in form:
        match = ATTRIBUTE_FIELD.match(key)
        if match:
            values = [v for v in form.getlist(key)]
            answers[match.group(1)] = values if match.group(2) else values[-1]
    return answers


def coordinate(form, name: str, low: float, high: float) -> float:
    raw = form.get(name, "")
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not low <= value <= high:  # (NaN is not)
        raise bad_request("open311.bad-coordinate", name=name, low=low, high=high)
    return value


# --- views ----------------------------------------------------------------------------

def localized(lang: str, zh: str | None, en: str | None) -> str | None:
    return zh if lang == "zh" else (en or zh)


def catalogue_text(lang: str, key: str) -> str:
    """The catalogue's message `key` in the request's language."""
    said = messages.say(key)
    return localized(lang, said.zh, said.en)


def service_view(category: dict, lang: str) -> dict:
    group = messages.name("category-group", category["group"], lang)
    return {"service_code": category["code"],
            "service_name": localized(lang, category["name_zh"], category["name_en"]),
            "description": f"{group}：{category['name_zh']}" if lang == "zh"
            else f"{group}: {category['name_en']}",
            "metadata": bool(category.get("attributes")), "type": "realtime",
            "keywords": ", ".join([category["name_zh"], category["name_en"], category["code"]]),
            "group": group}


def attribute_view(definition: dict, lang: str, order: int) -> dict:
    view = {"variable": True, "code": definition["code"], "datatype": definition["datatype"],
            "required": bool(definition.get("required")),
            "datatype_description": catalogue_text(lang, "open311.datetime-description")
            if definition["datatype"] == "datetime" else None,
            "order": definition.get("order", order),
            "description": localized(lang, definition.get("description_zh"),
                                     definition.get("description_en"))}
    if definition["datatype"] in LIST_TYPES:
        view["values"] = [{"key": v["key"], "name": localized(lang, v.get("name_zh"),
                                                                v.get("name_en"))}
                          for v in definition.get("values") or []]
    return view


def request_view(report: dict, state: dict | None, categories: dict, lang: str) -> dict:
    category = categories.get(report["category"])
    agency = (state or {}).get("agency_responsible")
    expected = (state or {}).get("expected_datetime")
    return {
        "service_request_id": report["id"],
        "status": state["status"] if state else "open",
        "status_notes": (state or {}).get("status_notes"),
        "service_name": localized(lang, category["name_zh"], category["name_en"])
        if category else report["category"],
        "service_code": report["category"],
        "description": report["description"],
        "agency_responsible": localized(lang, agency["zh"], agency["en"]) if agency else None,
        "service_notice": None,
        "requested_datetime": w3(report["submitted_at"]),
        "updated_datetime": w3(state["updated_datetime"] if state else report["submitted_at"]),
        "expected_datetime": w3(expected),
        "address": report["address"],
        "address_id": None,
        "zipcode": None,
        "lat": report["lat"],
        "long": report["lon"],
        "media_url": report.get("media_url"),  # the first photo, expiring (see above)
    }


# --- the entrypoints --------------------------------------------------------------------

def open311(endpoint: str):
    """Wraps an Open311 entrypoint: checks the format suffix and jurisdiction_id, and
    answers every refusal in the spec's error format (the kernel's would be problem+json).
    The wrapped method gets the format and the language after the request."""
    def decorate(method):
        @functools.wraps(method)
        def wrapper(self, request, fmt: str, **path):
            lang = language(request)
            answer_in = fmt if fmt in CONTENT_TYPES else "xml"  # the spec's required one
            try:
                if fmt not in CONTENT_TYPES:
                    raise not_found("open311.unknown-format", fmt=fmt)
                jurisdiction = request.values.get("jurisdiction_id")
                if jurisdiction not in (None, "", JURISDICTION):
                    raise not_found("open311.other-jurisdiction",
                                    jurisdiction=jurisdiction, served=JURISDICTION)
                return method(self, request, fmt, lang, **path)
            except Problem as problem:
                error = from_problem(problem)
            except Open311Error as refusal:
                error = refusal
            except Exception as exc:  # ours, not the client's: logged, never shown
                log.error("Open311 %s failed: %r", endpoint, exc, exc_info=exc)
                error = Open311Error(500, *messages.say("open311.internal-error")[1:])
            ERRORS.labels(endpoint, str(error.status)).inc()
            if error.status >= 500 or error.status == 403:
                log.warning("Open311 %s answered %d: %s", endpoint, error.status, error.en,
                            extra={"status": error.status})
            return error_response(answer_in, error, lang)
        return wrapper
    return decorate


class Open311Endpoints:
    """Mixin for GatewayService: needs `intake`, `dispatch`, `identity` (RemoteService)
    and `report_limit` (the per-user report rate limit)."""

    def _categories(self) -> dict:
        return {c["code"]: c for c in self.intake.list_categories()}

    def _requests(self, reports: list[dict], lang: str) -> list[dict]:
        states = self.dispatch.open311_statuses(
            {"report_ids": [r["id"] for r in reports]}) if reports else {}
        categories = self._categories()
        return [request_view(r, states.get(r["id"]), categories, lang) for r in reports]

    @http("GET", f"{PREFIX}/discovery.<string:fmt>")
    @open311("discovery")
    def open311_discovery(self, request, fmt, lang):
        base = request.host_url.rstrip("/") + PREFIX
        return render(fmt, "discovery", {
            "changeset": CHANGESET,
            "contact": catalogue_text(lang, "open311.contact"),
            "key_service": catalogue_text(lang, "open311.key-service"),
            "endpoints": [{"specification": SPECIFICATION, "url": base,
                           "changeset": CHANGESET, "type": "production",
                           "formats": ["text/xml", "application/json"]}]})

    @http("GET", f"{PREFIX}/services.<string:fmt>")
    @open311("services")
    def open311_services(self, request, fmt, lang):
        services = [service_view(c, lang) for c in sorted(
            self.intake.list_categories(), key=lambda c: c["code"])]
        return render(fmt, "services", services)

    @http("GET", f"{PREFIX}/services/<string:service_code>.<string:fmt>")
    @open311("service_definition")
    def open311_service_definition(self, request, fmt, lang, service_code):
        category = self._categories().get(service_code)
        if category is None:
            raise not_found("open311.unknown-service-code", service_code=service_code)
        attributes = [attribute_view(d, lang, i) for i, d in
                      enumerate(category.get("attributes") or [], start=1)]
        return render(fmt, "service_definition",
                      {"service_code": service_code, "attributes": attributes})

    @http("POST", f"{PREFIX}/requests.<string:fmt>")
    @open311("create_request")
    def open311_create_request(self, request, fmt, lang):
        if request.mimetype not in ("application/x-www-form-urlencoded", "multipart/form-data"):
            raise bad_request("open311.form-required")
        form = request.form
        partner = self.identity.partner_for_api_key(request.values.get("api_key") or "")
        wait = self.report_limit.take(partner["id"])
        if wait:
            raise too_many_reports(wait)
        if not form.get("service_code"):
            raise bad_request("open311.service-code-required")
        if form.get("lat") in (None, "") or form.get("long") in (None, ""):
            raise bad_request("open311.location-required")
        submission = {"category": form["service_code"],
                      "description": form.get("description", ""),
                      "location": {"lat": coordinate(form, "lat", -90, 90),
                                   "lon": coordinate(form, "long", -180, 180)},
                      "channel": "open311"}
        if form.get("address_string"):
            submission["address"] = form["address_string"]
        answers = attribute_answers(form)
        if answers:
            submission["attributes"] = answers
        code = submission["category"]
        if code not in self._categories():
            raise not_found("open311.unknown-service-code", service_code=code)
        report = self.intake.submit_report(
            partner, submission, submission_id(partner, request.headers.get("Idempotency-Key")))
        SUBMITTED.labels(partner["id"]).inc()
        log.info("Open311 request %s filed by partner %s", report["id"], partner["id"],
                 extra={"report_id": report["id"], "partner_id": partner["id"]})
        return render(fmt, "service_requests", [{
            "service_request_id": report["id"],
            "service_notice": catalogue_text(lang, "open311.service-notice"),
            "account_id": None}])

    @http("GET", f"{PREFIX}/requests.<string:fmt>")
    @open311("requests")
    def open311_requests(self, request, fmt, lang):
        args = request.args
        offset, size = paging(args)
        ids = comma_list(args, "service_request_id")
        if ids:  # overrides every other argument (the spec)
            if len(ids) > MAX_IDS:
                raise bad_request("open311.too-many-ids", max_ids=MAX_IDS)
            known = [i for i in ids if uuid_or_none(i)]
            reports = self.intake.open311_reports(
                {"ids": known, "offset": offset, "limit": size}) if known else []
            return render(fmt, "service_requests", self._requests(reports, lang))
        # Exactly the document's pattern: `open`, `closed`, or both comma separated.
        status = args.get("status")
        statuses = set() if status is None else set(status.split(","))
        if status is not None and not STATUS_FILTER.fullmatch(status):
            raise bad_request("open311.bad-status")
        start, end = date_window(args, datetime.now(UTC))
        query = {"categories": comma_list(args, "service_code") or None,
                 "start": start.isoformat(), "end": end.isoformat()}
        if query["categories"] is None:
            del query["categories"]
        if len(statuses) != 1:
            reports = self.intake.open311_reports({**query, "offset": offset, "limit": size})
            return render(fmt, "service_requests", self._requests(reports, lang))
        return render(fmt, "service_requests",
                      self._requests_in_status(query, statuses.pop(), offset, size, lang))

    def _requests_in_status(self, query: dict, status: str, skip: int, size: int,
                            lang: str) -> list[dict]:
        """A page of the requests in `status`: intake knows when and what, dispatch the
        state, so the range is walked in chunks until the page is full (see SCAN_LIMIT)."""
        found, scanned = [], 0
        categories = self._categories()
        while len(found) < size and scanned < SCAN_LIMIT:
            chunk = self.intake.open311_reports({**query, "offset": scanned,
                                                 "limit": SCAN_CHUNK})
            if not chunk:
                break
            states = self.dispatch.open311_statuses({"report_ids": [r["id"] for r in chunk]})
            for report in chunk:
                state = states.get(report["id"])
                if (state["status"] if state else "open") != status:
                    continue
                if skip:
                    skip -= 1
                elif len(found) < size:
                    found.append(request_view(report, state, categories, lang))
            scanned += len(chunk)
            if len(chunk) < SCAN_CHUNK:
                break
        return found

    @http("GET", f"{PREFIX}/requests/<string:service_request_id>.<string:fmt>")
    @open311("request")
    def open311_request(self, request, fmt, lang, service_request_id):
        wanted = report_id(service_request_id)
        reports = self.intake.open311_reports({"ids": [wanted]})
        if not reports:
            raise not_found("open311.request-not-found",
                            service_request_id=service_request_id)
        return render(fmt, "service_requests", self._requests(reports, lang))

    @http("GET", f"{PREFIX}/tokens/<string:token>.<string:fmt>")
    @open311("token")
    def open311_token(self, request, fmt, lang, token):
        wanted = report_id(token, "token")
        if not self.intake.open311_reports({"ids": [wanted]}):
            raise not_found("open311.token-not-found", token=token)
        return render(fmt, "service_requests", [{"service_request_id": wanted,
                                                 "token": token}])

    @http("GET", f"{PREFIX}/servicerequestupdates.<string:fmt>")
    @open311("service_request_updates")
    def open311_service_request_updates(self, request, fmt, lang):
        offset, size = paging(request.args)
        start, end = date_window(request.args, datetime.now(UTC))
        updates = self.dispatch.open311_updates({"start": start.isoformat(),
                                                 "end": end.isoformat(),
                                                 "offset": offset, "limit": size})
        for update in updates:
            update["updated_datetime"] = w3(update["updated_datetime"])
            update["media_url"] = None
        return render(fmt, "service_request_updates", updates)
