from prometheus_client import Counter, Gauge

CASE_TRANSITIONS = Counter("minqing_case_transitions_total",
                           "Case lifecycle transitions, by action and new status",
                           ["action", "status"])

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
                    "Callbacks (回访) queued and recorded, by outcome", ["outcome"])
