"""O365's own objects against the lab (tokens from MSAL's device flow): an event O365 saves
carries its DoNotForward extended property, and the lab keeps it."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from O365.calendar import Schedule

from exlab.graph.serve import GraphLab
from med.auth.oauth import OAuthSignIn
from tests.e2e import test_graph_backend
from tests.e2e.test_graph_backend import ASSISTENZ, CHEF, _backend

# The Graph lab and the device-code sign-in, shared with the Graph backend tests.
served = test_graph_backend.served
sign_in = test_graph_backend.sign_in
calm_lab = test_graph_backend.calm_lab

DO_NOT_FORWARD = "Boolean {00020329-0000-0000-C000-000000000046} Name DoNotForward"


@pytest.mark.parametrize("no_forwarding", [False, True])
def test_an_event_saved_by_o365_keeps_its_extended_property(
    served: GraphLab, sign_in: OAuthSignIn, no_forwarding: bool
) -> None:
    backend = _backend(served, sign_in, ASSISTENZ)
    try:
        schedule = Schedule(con=backend.con, protocol=backend.protocol, main_resource=CHEF)
        calendar = schedule.get_default_calendar()
        event = calendar.new_event()
        event.subject = f"O365-Termin {no_forwarding}"
        event.start = datetime(2027, 4, 5, 9, 0, tzinfo=ZoneInfo("Europe/Berlin"))
        event.end = event.start + timedelta(hours=1)
        event.no_forwarding = no_forwarding
        assert event.save()
        response = backend.con.oauth_request(
            f"{served.url}/v1.0/users/{CHEF}/events/{event.object_id}",
            "get",
            params={"$expand": f"singleValueExtendedProperties($filter=id eq '{DO_NOT_FORWARD}')"},
        )
        values = response.json()["singleValueExtendedProperties"]
        assert values == [{"id": DO_NOT_FORWARD, "value": "true" if no_forwarding else "false"}]
    finally:
        backend.close()
