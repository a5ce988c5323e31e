"""SLA clocks (时限), the warning ladder (黄线提醒, 红线示警, 催办), sampling, report figures.

Plain Python, no I/O: the clock is whatever `now` the caller passes, so every rule here
is tested without a server and without waiting.

- A clock runs for one deadline of one case at one unit: `accept` from assignment (or
  transfer) to the handler's 接单, `resolve` from 接单 to 办结. Its allowed time comes
  from a policy (category x priority, data an admin edits, seeded from the category's
  hours times a factor per priority).
- The ladder of one deadline: a yellow line at `yellow_at` of the allowed time (default
  75%), the red line at the deadline, then reminders at the deadline plus fractions of
  the allowed time (default +50%, +100%, +200%). Each rung is sent at most once per
  deadline value: a moved deadline (an approved extension) is a new deadline with a
  ladder of its own.
- A scan that comes late (the service was down) sends the red line if it is due and was
  not sent, and the highest rung that is due; a yellow line whose deadline has already
  passed is not sent (the red line says more), nor are reminders a later one supersedes.
"""
from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from minqing_kernel import messages

ACCEPT, RESOLVE = "accept", "resolve"
KINDS = (ACCEPT, RESOLVE)
YELLOW, RED, REMINDER = "yellow", "red", "reminder"
LEVELS = (YELLOW, RED, REMINDER)
PRIORITIES = ("urgent", "high", "normal", "low")
# How much of the category's time each priority gets: urgent cases run on a quarter.
PRIORITY_FACTORS = {"urgent": 0.25, "high": 0.5, "normal": 1.0, "low": 2.0}
DEFAULT_YELLOW_AT = 0.75
DEFAULT_REMINDERS = (0.5, 1.0, 2.0)
MAX_EXTENSION_HOURS = 24 * 30

KIND_ZH = {k: messages.name("sla-kind", k) for k in (ACCEPT, RESOLVE)}
LEVEL_ZH = {v: messages.name("sla-level", v) for v in (YELLOW, RED, REMINDER)}


@dataclass(frozen=True)
class Policy:
    """How long a case of one category and priority may take, in hours."""
    accept_hours: float
    resolve_hours: float
    yellow_at: float = DEFAULT_YELLOW_AT

    def hours(self, kind: str) -> float:
        return self.accept_hours if kind == ACCEPT else self.resolve_hours


def seed_policies(category_hours: dict[str, tuple[float, float]],
                  yellow_at: float = DEFAULT_YELLOW_AT) -> dict[tuple[str, str], Policy]:
    """The starting table: every category x priority, the category's hours x the factor."""
    return {(category, priority): Policy(accept * factor, resolve * factor, yellow_at)
            for category, (accept, resolve) in category_hours.items()
            for priority, factor in PRIORITY_FACTORS.items()}


def deadline(start: datetime, policy: Policy | None, kind: str) -> datetime | None:
    """When a clock started at `start` is due; None when no policy covers the case."""
    if policy is None or policy.hours(kind) <= 0:
        return None
    return start + timedelta(hours=policy.hours(kind))


@dataclass(frozen=True)
class Rung:
    level: str
    rung: int      # 0 yellow, 1 red, 2.. reminders: part of a warning's identity
    at: datetime


@dataclass(frozen=True)
class Clock:
    """One running deadline. `allowed` is the time it was given (extensions included)."""
    kind: str
    started_at: datetime
    due_at: datetime
    yellow_at: float = DEFAULT_YELLOW_AT
    reminders: tuple[float, ...] = DEFAULT_REMINDERS

    @property
    def allowed(self) -> timedelta:
        return self.due_at - self.started_at

    def ladder(self) -> list[Rung]:
        """Every rung of this deadline, in order. The yellow line keeps its place before
        the deadline (`yellow_at` of the allowed time); reminders step by the allowed time."""
        allowed = self.allowed
        rungs = [Rung(YELLOW, 0, self.started_at + allowed * self.yellow_at),
                 Rung(RED, 1, self.due_at)]
        rungs += [Rung(REMINDER, 2 + i, self.due_at + allowed * f)
                  for i, f in enumerate(self.reminders)]
        return rungs

    def due(self, now: datetime, sent: Iterable[int] = ()) -> list[Rung]:
        """What to send at `now`, given the rungs already sent for this deadline."""
        sent = set(sent)
        reached = [r for r in self.ladder() if r.at <= now]
        if not reached:
            return []
        out = []
        red = next((r for r in reached if r.level == RED), None)
        if red is not None and red.rung not in sent:
            out.append(red)
        highest = reached[-1]
        if highest.rung not in sent and highest not in out:
            out.append(highest)
        return out

    def next_at(self, now: datetime, sent: Iterable[int] = ()) -> datetime | None:
        """When the next rung falls due after `now` (None: the ladder is done)."""
        sent = set(sent)
        return next((r.at for r in self.ladder() if r.at > now and r.rung not in sent), None)

    def extended(self, hours: float) -> Clock:
        """The same clock with its deadline moved `hours` later (an approved extension)."""
        return replace(self, due_at=self.due_at + timedelta(hours=hours))

    def overdue(self, now: datetime) -> bool:
        return now >= self.due_at


def parse_reminders(text: str | None) -> tuple[float, ...]:
    """SLA_REMINDERS: comma-separated fractions of the allowed time after the deadline."""
    if not text or not text.strip():
        return DEFAULT_REMINDERS
    values = tuple(sorted(float(v) for v in text.split(",") if v.strip()))
    if any(v <= 0 for v in values):
        raise ValueError(f"SLA_REMINDERS must be positive fractions: {text!r}")
    return values


def warning_message(level: str, kind: str, due_at: datetime, case_id: str,
                    category: tuple[str, str]) -> tuple[str, str]:
    """(zh, en) text of a warning, for the inbox and the event: the category by its
    name (`category` is (zh, en)), the deadline in Beijing time, as people in Hangzhou
    read them (`sla.warning.*` in the catalogue)."""
    said = messages.say(f"sla.warning.{level}", case=case_id[:8], kind=kind,
                        kind_zh=KIND_ZH[kind], category_zh=category[0],
                        category_en=category[1], due_zh=messages.beijing(due_at),
                        due_en=messages.en("time.beijing-en",
                                           time=messages.beijing(due_at, with_zone=False)))
    return said.zh, said.en


def in_callback_sample(case_id: str, rate: float) -> bool:
    """Whether a closed case goes to the callback (回访) queue: a fixed share of cases,
    decided by the case id alone, so that every instance and every retry agree."""
    if rate <= 0:
        return False
    if rate >= 1:
        return True
    digest = hashlib.sha256(case_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2 ** 64 < rate


def satisfaction_overdue(resolved_at: datetime, wait_hours: float, now: datetime) -> bool:
    """No rating within the wait after 办结: the case closes as unanswered."""
    return now >= resolved_at + timedelta(hours=wait_hours)


# --- the supervision report (督办报告) ---------------------------------------------------

@dataclass(frozen=True)
class Assignment:
    """One case as one unit received it in the period, and what became of it."""
    unit_id: str
    case_id: str
    assigned_at: datetime
    accepted_on_time: bool
    resolved: bool
    resolved_on_time: bool
    handling_s: float | None  # from assignment to 办结, when resolved
    rating: int | None
    reopened: bool


REPORT_FIELDS = ("unit_id", "received", "accepted_on_time", "resolved", "resolved_on_time",
                 "yellow_lines", "red_lines", "average_handling_hours", "resolution_rate",
                 "satisfaction_rate", "reopen_rate")


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def report_figures(assignments: Iterable[Assignment], warnings: dict[tuple[str, str], int],
                   units: Iterable[str], satisfied_from: int = 3) -> list[dict]:
    """One row per unit: counts, on-time counts, warnings, rates (None when undefined).

    Rates: resolution = resolved / received; satisfaction = satisfied / rated;
    reopen = reopened / resolved. `warnings` maps (unit, level) to a count."""
    by_unit: dict[str, list[Assignment]] = {u: [] for u in units}
    for a in assignments:
        by_unit.setdefault(a.unit_id, []).append(a)
    rows = []
    for unit, cases in sorted(by_unit.items()):
        resolved = [a for a in cases if a.resolved]
        rated = [a for a in cases if a.rating is not None]
        handling = [a.handling_s for a in resolved if a.handling_s is not None]
        rows.append({
            "unit_id": unit,
            "received": len(cases),
            "accepted_on_time": sum(a.accepted_on_time for a in cases),
            "resolved": len(resolved),
            "resolved_on_time": sum(a.resolved_on_time for a in cases),
            "yellow_lines": warnings.get((unit, YELLOW), 0),
            "red_lines": warnings.get((unit, RED), 0),
            "average_handling_hours": (round(sum(handling) / len(handling) / 3600, 4)
                                       if handling else None),
            "resolution_rate": _rate(len(resolved), len(cases)),
            "satisfaction_rate": _rate(sum(a.rating >= satisfied_from for a in rated),
                                       len(rated)),
            "reopen_rate": _rate(sum(a.reopened for a in resolved), len(resolved)),
        })
    return rows


# The CSV is read by people in a spreadsheet: each unit by its name too, and the period in
# Beijing time (the JSON keeps UTC, RFC 3339, for programs).
CSV_FIELDS = ("unit_id", "unit_name", "period_from", "period_to", *REPORT_FIELDS[1:])


def report_csv(rows: list[dict], start: datetime, to: datetime,
               unit_names: dict[str, str] | None = None) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, lineterminator="\r\n")
    writer.writeheader()
    period = {"period_from": messages.beijing(start), "period_to": messages.beijing(to)}
    for row in rows:
        writer.writerow({**{k: "" if row[k] is None else row[k] for k in REPORT_FIELDS},
                         "unit_name": (unit_names or {}).get(row["unit_id"], ""), **period})
    return out.getvalue()
