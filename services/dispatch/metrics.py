from prometheus_client import Counter, Gauge

CASE_TRANSITIONS = Counter("minqing_case_transitions_total",
                           "Case lifecycle transitions, by action and new status",
                           ["action", "status"])
REPEATED_RETURNS = Counter("minqing_case_repeated_returns_total",
                           "Cases sent back a second time or more: the operator decides")
EXTERNAL_EVENTS_IGNORED = Counter("minqing_external_events_ignored_total",
                                  "Partner events that no longer fit their case (unknown case "
                                  "or not waiting on the partner), by event type", ["type"])
ROUTING_RULE_CHANGES = Counter("minqing_routing_rule_changes_total",
                               "Routing rules written or deleted by an admin", ["change"])

# Supervision (supervision.py): warnings sent, deadlines passed and not met, callbacks.
SLA_WARNINGS = Counter("minqing_sla_warnings_total",
                       "SLA warnings sent (yellow line, red line, reminder), by deadline",
                       ["level", "deadline"])
OPEN_RED_LINES = Gauge("minqing_sla_open_red_lines",
                       "Deadlines passed and not yet met (cases past their red line), by unit",
                       ["unit"])
SLA_SCAN_FAILURES = Counter("minqing_sla_scan_failures_total",
                            "Supervision scans that failed (they run again next interval)",
                            ["step"])
CASES_CLOSED_UNANSWERED = Counter("minqing_cases_closed_unanswered_total",
                                  "Resolved cases closed because nobody rated them in time")
CALLBACKS = Counter("minqing_callbacks_total",
                    "Callbacks queued and recorded, by outcome", ["outcome"])

# What identity tells dispatch (units.py, erasure.py).
UNIT_COPIES = Counter("minqing_unit_copies_total",
                      "identity's unit.changed / grid.changed events, by entity and whether "
                      "they were applied or older than dispatch's copy", ["entity", "outcome"])
PSEUDONYMISED = Counter("minqing_cases_pseudonymised_total",
                        "Cases whose reporter was a deleted account, re-keyed to its "
                        "pseudonym", ["table"])
