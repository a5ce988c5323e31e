"""The kernel's own metrics: outbox, consumption, dead letters. Services add domain ones."""
import time
from weakref import WeakKeyDictionary

from nameko.extensions import DependencyProvider
from prometheus_client import Counter, Gauge, Histogram

OUTBOX_PUBLISHED = Counter("minqing_outbox_published_total",
                           "Events published from the outbox and confirmed by the broker",
                           ["service"])
OUTBOX_FAILURES = Counter("minqing_outbox_publish_failures_total",
                          "Outbox batches that could not be published (they are retried)",
                          ["service"])
OUTBOX_BACKLOG = Gauge("minqing_outbox_backlog",
                       "Unpublished outbox rows seen by the last relay pass (0 = drained)",
                       ["service"])
OUTBOX_PUBLISH_SECONDS = Histogram("minqing_outbox_publish_seconds",
                                   "Time to publish one batch and receive its confirms",
                                   ["service"])
OUTBOX_LAG_SECONDS = Histogram("minqing_outbox_lag_seconds",
                               "Age of the oldest event in a batch when it was published",
                               ["service"],
                               buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60))
EVENTS_HANDLED = Counter("minqing_events_handled_total",
                         "Events handled by a consumer, by outcome",
                         ["consumer", "type", "outcome"])
EVENT_HANDLE_SECONDS = Histogram("minqing_event_handle_seconds",
                                 "Time to handle one event", ["consumer"])
DEAD_LETTERED = Counter("minqing_dead_lettered_total",
                        "Messages sent to the dead-letter queue, by reason",
                        ["consumer", "reason"])
# Refusals sent back to where their sender reads them (a partner platform's rejection
# queue): the sender's to fix, so not counted as dead letters, which page our operators.
SENT_BACK = Counter("minqing_sent_back_total",
                    "Messages refused and sent back to their sender's queue, by reason",
                    ["consumer", "reason"])
HTTP_SECONDS = Histogram("minqing_http_request_seconds",
                         "HTTP requests served, by method, route and status",
                         ["method", "route", "status"])
# Requests refused before any service was asked: a body too large or nested too deep.
REQUESTS_REFUSED = Counter("minqing_http_requests_refused_total",
                           "HTTP requests refused before being parsed, by route and reason",
                           ["route", "reason"])
ENTRYPOINT_SECONDS = Histogram("minqing_entrypoint_seconds",
                               "Time a service spends in one RPC, HTTP or event worker",
                               ["service", "entrypoint", "outcome"])


class EntrypointTimer(DependencyProvider):
    """Times every RPC, HTTP and event worker of a service, by entrypoint and outcome."""

    def setup(self) -> None:
        self.started: WeakKeyDictionary = WeakKeyDictionary()

    def worker_setup(self, worker_ctx) -> None:
        self.started[worker_ctx] = time.perf_counter()

    def worker_result(self, worker_ctx, result=None, exc_info=None) -> None:
        started = self.started.pop(worker_ctx, None)
        if started is None:
            return
        outcome = "ok" if exc_info is None else type(exc_info[1]).__name__
        ENTRYPOINT_SECONDS.labels(self.container.service_name,
                                  worker_ctx.entrypoint.method_name, outcome
                                  ).observe(time.perf_counter() - started)
