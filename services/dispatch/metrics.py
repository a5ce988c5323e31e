from prometheus_client import Counter

CASE_TRANSITIONS = Counter("minqing_case_transitions_total",
                           "Case lifecycle transitions, by action and new status",
                           ["action", "status"])
REPEATED_RETURNS = Counter("minqing_case_repeated_returns_total",
                           "Cases sent back (退单) a second time or more: the operator decides")
EXTERNAL_EVENTS_IGNORED = Counter("minqing_external_events_ignored_total",
                                  "Partner events that no longer fit their case (unknown case "
                                  "or not waiting on the partner), by event type", ["type"])
ROUTING_RULE_CHANGES = Counter("minqing_routing_rule_changes_total",
                               "Routing rules written or deleted by an admin", ["change"])
