from prometheus_client import Counter, Gauge

REWARDS = Counter("minqing_rewards_total",
                  "Rewards by what happened to them (proposed, approved, refused)",
                  ["reward_class", "outcome"])
CLOSURES_UNREWARDED = Counter("minqing_rewards_not_proposed_total",
                              "Closed cases that earned no reward, by reason "
                              "(not-rewarded-class, no-rule, handled-by-reporter, already)",
                              ["reason"])
REWARDED_FEN = Counter("minqing_rewards_approved_fen_total",
                       "Fen approved as rewards (1 yuan = 100 fen)", ["reward_class"])
PAYOUTS = Counter("minqing_payouts_total", "Payout steps taken, by action", ["action"])
AWAITING_APPROVAL = Gauge("minqing_rewards_awaiting_decision",
                          "Rewards proposed and not yet approved or refused (last count)")
