from prometheus_client import Counter

CASE_TRANSITIONS = Counter("minqing_case_transitions_total",
                           "Case lifecycle transitions, by action and new status",
                           ["action", "status"])
