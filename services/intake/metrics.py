from prometheus_client import Counter

REPORTS_SUBMITTED = Counter("minqing_reports_submitted_total",
                            "Reports accepted by intake", ["category", "channel"])
