"""identity's metrics: one-time codes and the SMS provider (alerts: MinqingSmsProviderFailing
in deploy/prometheus/alerts.yml)."""
from prometheus_client import Counter

SMS_CODES_REQUESTED = Counter("minqing_sms_codes_requested_total",
                              "One-time codes asked for and accepted, by purpose", ["purpose"])
SMS_THROTTLED = Counter("minqing_sms_throttled_total",
                        "Code requests refused as too frequent, by what was limited "
                        "(number: one a minute per number; the gateway counts clients in "
                        "minqing_sms_client_throttled_total)", ["by"])
SMS_CODE_CHECKS = Counter("minqing_sms_code_checks_total",
                          "One-time codes tried, by outcome (ok, wrong, burned, none)",
                          ["outcome"])
SMS_SENT = Counter("minqing_sms_sent_total",
                   "Messages the SMS provider accepted, by the provider's host (SMS_ENDPOINT)",
                   ["host"])
SMS_SEND_FAILURES = Counter("minqing_sms_send_failures_total",
                            "Sends the SMS provider refused or that did not reach it, by its "
                            "answer (transport: no answer)", ["code"])
SMS_EXPIRED_UNSENT = Counter("minqing_sms_expired_unsent_total",
                             "Codes that expired before the provider took them (given up)")
UNIT_CHANGES = Counter("minqing_unit_changes_total",
                       "Changes admins made to units and grids, by what (unit-created, "
                       "unit-changed, grid-added, grid-changed)", ["what"])
PASSWORD_CHANGES = Counter("minqing_password_changes_total",
                           "Password changes by signed-in users, by outcome (changed, "
                           "wrong-current: the current password given was not right)",
                           ["outcome"])
ACCOUNTS_DELETED = Counter("minqing_accounts_deleted_total",
                           "Accounts deleted by their owners (account.deleted emitted)")
