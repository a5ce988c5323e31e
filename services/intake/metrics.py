from prometheus_client import Counter

REPORTS_SUBMITTED = Counter("minqing_reports_submitted_total",
                            "Reports accepted by intake", ["category", "channel"])
PARTNER_REPORTS = Counter("minqing_partner_reports_total",
                          "Reports partner platforms sent over RabbitMQ, by outcome "
                          "(accepted, or the reason they were sent back)",
                          ["partner", "outcome"])
UPLOADS_ISSUED = Counter("minqing_uploads_issued_total",
                         "Upload tickets (presigned POST policies) issued, by kind", ["kind"])
ATTACHMENTS_REFUSED = Counter("minqing_attachments_refused_total",
                              "Uploads refused as attachments, by reason (the problem's code: "
                              "attachment-not-yours, -already-used, -missing, -too-large, "
                              "-wrong-type)", ["reason"])
PSEUDONYMISED = Counter("minqing_reports_pseudonymised_total",
                        "Rows re-keyed from a deleted account to its pseudonym, by table",
                        ["table"])
CALLER_NUMBERS_REVEALED = Counter("minqing_caller_numbers_revealed_total",
                                  "Phone callers' numbers shown to an operator for a "
                                  "callback (each one audited in caller_number_reveals)")
