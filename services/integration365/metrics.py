from prometheus_client import Counter, Gauge

HANDOVERS = Gauge("minqing_handovers",
                  "Hand-overs to partner platforms, by partner and state (last count)",
                  ["partner", "state"])
PARTNER_BACKLOG = Gauge("minqing_partner_backlog",
                        "Hand-overs the partner has not accepted yet (pending or sent)",
                        ["partner"])
PARTNER_OLDEST_PENDING_SECONDS = Gauge(
    "minqing_partner_oldest_pending_seconds",
    "Age of the oldest hand-over not yet delivered to the partner (0 = none)", ["partner"])
PARTNER_CALL_FAILURES = Counter("minqing_partner_call_failures_total",
                                "Calls to a partner that failed, by operation and reason",
                                ["partner", "operation", "reason"])
PARTNER_CIRCUIT_OPEN = Gauge("minqing_partner_circuit_open",
                             "1 while the circuit to the partner is open or half-open",
                             ["partner"])
HANDOVERS_SENT = Counter("minqing_handovers_sent_total",
                         "Work orders the partner confirmed, by how we learned its id",
                         ["partner", "how"])
PARTNER_UPDATES = Counter("minqing_partner_updates_total",
                          "Remote updates acted on, by what they meant",
                          ["partner", "kind"])
RECONCILIATION_REPAIRS = Counter("minqing_reconciliation_repairs_total",
                                 "Hand-overs whose local and remote state had drifted, "
                                 "repaired by the reconciliation job, by repair",
                                 ["partner", "repair"])
ESCALATIONS_IGNORED = Counter("minqing_escalations_ignored_total",
                              "Escalations not taken on, by reason", ["partner", "reason"])
PARTNER_UPDATES_UNPLACED = Gauge(
    "minqing_partner_updates_unplaced",
    "Updates in the last poll for work orders we do not know (yet): a lost POST answer "
    "not yet found again, or another client's work order", ["partner"])
PARTNER_ID_CONFLICTS = Counter(
    "minqing_partner_id_conflicts_total",
    "Work-order ids the partner gave for a hand-over that another hand-over already holds "
    "(the partner reused or repeated an id); each leaves a hand-over needing a person",
    ["partner"])
