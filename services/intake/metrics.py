from prometheus_client import Counter

REPORTS_SUBMITTED = Counter("minqing_reports_submitted_total",
                            "Reports accepted by intake", ["category", "channel"])
PARTNER_REPORTS = Counter("minqing_partner_reports_total",
                          "Reports partner platforms sent over RabbitMQ, by outcome "
                          "(accepted, or the reason they were sent back)",
                          ["partner", "outcome"])
