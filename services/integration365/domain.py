"""The hand-over to a partner platform: rules only, no I/O.

A hand-over (外部联动) is one case given to one partner. Its life:

    pending ──send──► sent ──partner accepts──► accepted ──► in_progress ──► resolved
       ▲  │             │                           │             │
       └──┼ reconciliation: the partner lost it ────┘             └──────► rejected
          │
          └─ the partner answered with a work-order id another hand-over holds ─► needs_person

`pending` is our own outbox towards the partner: the consumer records it in the same
transaction as the escalation event's id, and a sender claims it when due. Each remote
update moves the state forward at most once and yields the external.* events dispatch
turns into case transitions; a terminal hand-over (resolved, rejected) ignores updates,
which is what makes "resolved" arrive once whether the poll or the reconciliation saw
the closing first.

Also here: exponential backoff with full jitter and a circuit breaker, both with an
injected clock and random source so their tests need no sleeping.
"""
from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from minqing_kernel import messages


class State(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    ACCEPTED = "accepted"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    REJECTED = "rejected"
    # The partner answered with a work-order id that another hand-over already holds (it
    # restarted its numbering, or repeats ids): which case the id's updates belong to is
    # something only a person can settle with the partner. The bridge stops trying (a
    # retry would get the same id), the case goes back to the command center.
    NEEDS_PERSON = "needs_person"


# No update moves these; a new escalation of the case starts a new round.
TERMINAL = frozenset({State.RESOLVED, State.REJECTED, State.NEEDS_PERSON})
# Not yet accepted by the partner: what the backlog metric and its alert count.
BACKLOG = frozenset({State.PENDING, State.SENT})
# Live on the partner's side: what reconciliation compares.
LIVE_REMOTE = frozenset({State.SENT, State.ACCEPTED, State.IN_PROGRESS})


class Kind(StrEnum):
    """What a remote update means to us."""
    ACCEPTED = "accepted"
    PROGRESS = "progress"
    RESOLVED = "resolved"
    REJECTED = "rejected"


# Statuses of the Open311 `servicerequestupdates` extension (as FixMyStreet and others
# publish them), upper-cased. Anything else is progress: the partner said something,
# dispatch records it on the trail, nothing changes state on a word we do not know.
REMOTE_STATUS_KINDS = {
    "ACTION_SCHEDULED": Kind.ACCEPTED,
    "INVESTIGATING": Kind.ACCEPTED,
    "ACCEPTED": Kind.ACCEPTED,
    "IN_PROGRESS": Kind.PROGRESS,
    "FIXED": Kind.RESOLVED,
    "CLOSED": Kind.RESOLVED,
    "RESOLVED": Kind.RESOLVED,
    "NOT_COUNCILS_RESPONSIBILITY": Kind.REJECTED,
    "NO_FURTHER_ACTION": Kind.REJECTED,
    "DUPLICATE": Kind.REJECTED,
    "INTERNAL_REFERRAL": Kind.REJECTED,
    "REJECTED": Kind.REJECTED,
}

DEFAULT_RESULT = "{zh} ({en})".format(**messages.say("integration365.default-result")._asdict())
DEFAULT_REASON = "{zh} ({en})".format(**messages.say("integration365.default-reason")._asdict())


def id_conflict_reason(remote_id: str, holder_case_id: str) -> str:
    """Why a hand-over needs a person, in the words the command center reads on the case."""
    return "{zh} ({en})".format(**messages.say(
        "integration365.id-conflict", remote_id=remote_id, holder_case_id=holder_case_id,
        holder_short=holder_case_id[:8])._asdict())


def kind_of(remote_status: str) -> Kind:
    return REMOTE_STATUS_KINDS.get((remote_status or "").strip().upper(), Kind.PROGRESS)


def apply_update(state: State, kind: Kind) -> tuple[State, list[Kind]]:
    """The hand-over's next state after a remote update, and the events to emit (in order).

    An update that skips a step (the partner's first word is "in progress" or "fixed")
    also emits the accepted it implies, so dispatch always sees accepted first.
    """
    state = State(state)
    if state in TERMINAL:
        return state, []
    not_yet_accepted = state in (State.PENDING, State.SENT)
    if kind is Kind.ACCEPTED:
        return (State.ACCEPTED, [Kind.ACCEPTED]) if not_yet_accepted else (state, [])
    implied = [Kind.ACCEPTED] if not_yet_accepted else []
    if kind is Kind.PROGRESS:
        return State.IN_PROGRESS, implied + [Kind.PROGRESS]
    if kind is Kind.RESOLVED:
        return State.RESOLVED, implied + [Kind.RESOLVED]
    # A rejection needs no implied acceptance: the partner refused, it never took it.
    return State.REJECTED, [Kind.REJECTED]


def event_data(kind: Kind, case_id: str, partner: str, remote_id: str | None, at: str,
               note: str | None, remote_status: str) -> dict:
    """The data of the external.<kind> event (contracts/events/cn.minqing.external.*)."""
    data = {"case_id": case_id, "partner": partner, "remote_id": remote_id, "at": at,
            "note": (note or None) and note[:2000]}
    if kind is Kind.PROGRESS:
        data["remote_status"] = (remote_status or "unknown")[:100]
    elif kind is Kind.RESOLVED:
        data["result"] = (note or DEFAULT_RESULT)[:2000]
    elif kind is Kind.REJECTED:
        data["reason"] = (note or DEFAULT_REASON)[:2000]
    return data


def work_order(escalation: dict) -> dict:
    """What the partner gets from a case.escalated_external event's data: the problem,
    where it is and when it is due; never who reported it (the event does not carry it)."""
    return {
        "case_id": escalation["case_id"],
        "category": escalation["category"],
        "description": escalation["description"],
        "lat": escalation["location"]["lat"],
        "lon": escalation["location"]["lon"],
        "address": escalation.get("address"),
        "attachments": [a["key"] for a in escalation.get("attachments", [])],
        "resolve_due_at": escalation.get("resolve_due_at"),
    }


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff
    and Jitter"): wait uniformly in [0, min(cap, base * 2^(attempt-1))]. Full jitter
    spreads a backlog's retries after an outage instead of stampeding the partner the
    moment it comes back."""

    base_s: float = 2.0
    cap_s: float = 300.0

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        ceiling = min(self.cap_s, self.base_s * 2 ** max(0, min(attempt - 1, 30)))
        return ceiling * rand()


class Circuit(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass
class CircuitBreaker:
    """Stops calling a partner that is down, so the backlog waits in our database and
    not in timeouts. After `threshold` consecutive failures it opens; after `cooldown_s`
    one call (the probe) is let through; its success closes the circuit, its failure
    opens it again for another cool-down.

    One per process and partner: each instance learns about the partner on its own,
    which costs at most `threshold` failed calls per instance.
    """

    threshold: int = 5
    cooldown_s: float = 30.0
    clock: Callable[[], float] = time.monotonic
    failures: int = 0
    opened_at: float | None = None
    _probe_at: float | None = field(default=None, repr=False)

    @property
    def state(self) -> Circuit:
        if self.opened_at is None:
            return Circuit.CLOSED
        if self.clock() - self.opened_at >= self.cooldown_s:
            return Circuit.HALF_OPEN
        return Circuit.OPEN

    def allow(self) -> bool:
        """May a call go out now? In half-open, only one (the probe) until it reports."""
        state = self.state
        if state is Circuit.CLOSED:
            return True
        # A probe that never reported (its worker died) is given up after a cool-down.
        now = self.clock()
        if state is Circuit.HALF_OPEN and (self._probe_at is None
                                           or now - self._probe_at >= self.cooldown_s):
            self._probe_at = now
            return True
        return False

    def release(self) -> None:
        """Give back a probe that was allowed but not used (there was nothing to send)."""
        self._probe_at = None

    def record_success(self) -> None:
        self.failures = 0
        self.opened_at = None
        self._probe_at = None

    def record_failure(self) -> None:
        self.failures += 1
        if self._probe_at is not None or self.failures >= self.threshold:
            self.opened_at = self.clock()
        self._probe_at = None
