"""Units and grids managed by admins over HTTP (/v1/admin/units, issue #19). identity owns
them and audits every change; dispatch follows through identity's events, so the unit
list staff see at GET /v1/units (dispatch's copy) shows a change within moments, while
these endpoints answer from identity itself. Mixed into GatewayService like the account
endpoints: its own file so the gateway's other routes are left as they are."""
from __future__ import annotations

from gateway import auth
from gateway.body import body
from minqing_kernel.web import http, json_response

ADMINS = ("admin",)


class UnitEndpoints:
    """Needs from the service: identity and actor()."""

    def _admin(self, request) -> dict:
        actor = self.actor(request)
        auth.require_role(actor, *ADMINS)
        return actor

    @http("GET", "/v1/admin/units")
    def admin_units(self, request):
        self._admin(request)
        return json_response(self.identity.list_units())

    @http("POST", "/v1/admin/units", max_body_bytes=4096)
    def create_unit(self, request):
        actor = self._admin(request)
        unit = self.identity.create_unit(actor["id"], body(request))
        return json_response(unit, 201, {"Location": f"/v1/admin/units/{unit['id']}"})

    @http("PATCH", "/v1/admin/units/<string:unit_id>", max_body_bytes=4096)
    def update_unit(self, request, unit_id):
        actor = self._admin(request)
        return json_response(self.identity.update_unit(actor["id"], unit_id, body(request)))

    @http("POST", "/v1/admin/units/<string:unit_id>/grids", max_body_bytes=4096)
    def add_grid(self, request, unit_id):
        actor = self._admin(request)
        grid = self.identity.add_grid(actor["id"], unit_id, body(request))
        return json_response(grid, 201,
                             {"Location": f"/v1/admin/units/{unit_id}/grids/{grid['id']}"})

    @http("PATCH", "/v1/admin/units/<string:unit_id>/grids/<string:grid_id>",
          max_body_bytes=4096)
    def update_grid(self, request, unit_id, grid_id):
        actor = self._admin(request)
        return json_response(self.identity.update_grid(actor["id"], unit_id, grid_id,
                                                       body(request)))

    @http("GET", "/v1/admin/units/<string:unit_id>/changes")
    def unit_changes(self, request, unit_id):
        self._admin(request)
        return json_response(self.identity.unit_changes(unit_id))
