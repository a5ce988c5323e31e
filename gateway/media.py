"""Photos shown (issue #12, point 1): the media URLs of reports and cases
(minqing_kernel/media.py says why these, checked at each fetch).

The owning service decides, as for the report or case itself; intake signs a presigned
GET that lives MEDIA_URL_TTL_S; the answer is a 302 to it, so the bytes go from the store
to the client and never through the gateway. The body says the same in JSON for a client
that does not follow redirects. Neither the redirect nor its URL may be cached past its
life or shared by a proxy: `Cache-Control: private, no-store`."""
from __future__ import annotations

from gateway import auth
from minqing_kernel.web import http, json_response

WISH_READERS = ("patroller", "operator", "admin")  # who may read the wish board


def media_redirect(link: dict):
    return json_response(link, 302, {"Location": link["url"],
                                     "Cache-Control": "private, no-store"})


class MediaEndpoints:
    """Mixin for GatewayService: needs `actor`, `intake` and `dispatch`."""

    @http("GET", "/v1/reports/<string:report_id>/media/<string:name>")
    def report_media(self, request, report_id, name):
        return media_redirect(self.intake.report_media(self.actor(request), report_id, name))

    @http("GET", "/v1/cases/<string:case_id>/media/<string:name>")
    def case_media(self, request, case_id, name):
        key = self.dispatch.case_media_key(self.actor(request), case_id, name)
        return media_redirect(self.intake.attachment_link(key))

    @http("GET", "/v1/wishes/<string:case_id>/media/<string:name>")
    def wish_media(self, request, case_id, name):
        actor = self.actor(request)
        auth.require_role(actor, *WISH_READERS)
        key = self.dispatch.wish_media_key(actor, case_id, name)
        return media_redirect(self.intake.attachment_link(key))
