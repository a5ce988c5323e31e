"""有奖爆料 over HTTP (issue #14): rewards, balances, rules, payouts and the ranking.
Mixed into GatewayService like the account endpoints, in a file of its own.

The rewards service decides what each person may see and do (ownership, four eyes);
this checks the role first and adds the one thing rewards does not hold: the names
people read. The ranking shows a display name or a mask, never an id or a phone.
"""
from __future__ import annotations

from gateway import auth
from gateway.body import body
from minqing_kernel import messages
from minqing_kernel.errors import Invalid, NotFound
from minqing_kernel.web import http, json_response

REVIEWERS = ("operator", "leader", "admin")
FINANCE = ("admin",)
FLAGGERS = ("operator", "admin")  # who know who reported (they flag reporters)
PAYOUT_VIEWERS = ("leader", "admin")  # finance, and the leaders who approve payouts
MAX_NAMED = 100  # names looked up for one export or ranking (one RPC each)


def _mask(resident_id: str) -> str:
    # the same mask as services/rewards/domain.mask: a phone caller has no account
    return messages.zh("rewards.mask", suffix=resident_id[-4:])


class RewardEndpoints:
    """Needs from the service: rewards, identity, actor()."""

    def _display_names(self, ids: list[str]) -> dict[str, str | None]:
        names: dict[str, str | None] = {}
        for resident_id in ids[:MAX_NAMED]:
            try:
                names[resident_id] = self.identity.get_user(resident_id).get("display_name")
            except NotFound:  # a phone caller (keyed caller id), or a deleted account
                names[resident_id] = None
        return names

    @http("GET", "/v1/rewards")
    def list_rewards(self, request):
        actor = self.actor(request)
        return json_response(self.rewards.list_rewards(actor, request.args.to_dict()))

    @http("GET", "/v1/rewards/balance")
    def reward_balance(self, request):
        return json_response(self.rewards.my_balance(self.actor(request)))

    @http("POST", "/v1/rewards/<string:reward_id>/actions", max_body_bytes=4096)
    def reward_action(self, request, reward_id):
        actor = self.actor(request)
        auth.require_role(actor, *REVIEWERS)
        return json_response(self.rewards.reward_action(actor, reward_id, body(request)))

    @http("PUT", "/v1/rewards/flags/<string:resident_id>", max_body_bytes=4096)
    def flag_reporter(self, request, resident_id):
        """The command center flags a reporter (suspected abuse): rewards held."""
        actor = self.actor(request)
        auth.require_role(actor, *FLAGGERS)
        return json_response(self.rewards.flag_resident(actor, resident_id, body(request)))

    @http("DELETE", "/v1/rewards/flags/<string:resident_id>")
    def unflag_reporter(self, request, resident_id):
        """A leader or an admin reviewed the reporter: the flag is lifted."""
        actor = self.actor(request)
        auth.require_role(actor, *PAYOUT_VIEWERS)
        return json_response(self.rewards.unflag_resident(actor, resident_id))

    @http("GET", "/v1/rewards/rules")
    def reward_rules(self, request):
        auth.require_role(self.actor(request), *REVIEWERS)
        return json_response(self.rewards.list_rules())

    @http("PUT", "/v1/rewards/rules/<string:reward_class>/<string:priority>",
          max_body_bytes=1024)
    def set_reward_rule(self, request, reward_class, priority):
        actor = self.actor(request)
        auth.require_role(actor, *FINANCE)
        return json_response(self.rewards.set_rule(actor, reward_class, priority,
                                                   body(request)))

    @http("GET", "/v1/rewards/rules/changes")
    def reward_rule_changes(self, request):
        auth.require_role(self.actor(request), *FINANCE)
        return json_response(self.rewards.rule_changes(request.args.to_dict()))

    @http("POST", "/v1/payouts", max_body_bytes=1024)
    def create_payouts(self, request):
        actor = self.actor(request)
        auth.require_role(actor, *FINANCE)
        return json_response(self.rewards.create_payouts(actor), 201)

    @http("GET", "/v1/payouts")
    def list_payouts(self, request):
        actor = self.actor(request)
        auth.require_role(actor, *PAYOUT_VIEWERS)
        return json_response(self.rewards.list_payouts(actor, request.args.to_dict()))

    @http("POST", "/v1/payouts/<string:payout_id>/actions", max_body_bytes=4096)
    def payout_action(self, request, payout_id):
        actor = self.actor(request)
        auth.require_role(actor, *PAYOUT_VIEWERS)
        return json_response(self.rewards.payout_action(actor, payout_id, body(request)))

    @http("GET", "/v1/payouts/export")
    def export_payouts(self, request):
        """Finance's CSV (UTF-8 with BOM, Beijing time), with the residents' names."""
        auth.require_role(self.actor(request), *FINANCE)
        query = request.args.to_dict()
        names = self._display_names(self.rewards.payout_residents(query))
        return 200, {"Content-Type": "text/csv; charset=utf-8",
                     "Content-Disposition": 'attachment; filename="payouts.csv"'
                     }, self.rewards.export_payouts(query, names)

    @http("GET", "/v1/leaderboard")
    def leaderboard(self, request):
        """爆料排名: everyone signed in sees names or masks; her own row is marked."""
        actor = self.actor(request)
        return json_response(self._named_board(actor, request.args.to_dict()))

    @http("GET", "/v1/leaderboard/top-reporters")
    def top_reporters(self, request):
        """The year's 爆料达人 (top-N), as JSON or as CSV for the commendation."""
        actor = self.actor(request)
        args = request.args.to_dict()
        fmt = args.pop("format", "json")
        if fmt not in ("json", "csv"):
            raise Invalid.of("rewards.format-json-or-csv",
                             errors=[{"field": "format", "message": "json or csv"}])
        if "year" in args:
            args["at"] = args.pop("year")
        query = {**args, "period": "year"}
        board = self._named_board(actor, query)
        if fmt == "csv":
            return 200, {"Content-Type": "text/csv; charset=utf-8",
                         "Content-Disposition": 'attachment; filename="top-reporters.csv"'
                         }, self.rewards.top_reporters_csv(board["at"], board["items"])
        return json_response(board)

    def _named_board(self, actor: dict, query: dict) -> dict:
        board = self.rewards.leaderboard(actor, query)
        names = self._display_names([row["resident_id"] for row in board["items"]])

        def shown(row: dict | None) -> dict | None:
            if row is None:
                return None
            who = row.pop("resident_id")
            row["name"] = names.get(who) or _mask(who)
            row["is_me"] = who == actor["id"]
            return row

        board["items"] = [shown(row) for row in board["items"]]
        board["me"] = shown(board["me"])
        return board
