"""The lab's Graph REST face over the demo organisation: resources, paging, rights, faults."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from exlab.demo import open_demo
from exlab.graph.oauth import DAEMON_CLIENT_ID, PUBLIC_CLIENT_ID
from exlab.graph.serve import GraphLab

CHEF = "chef@musterstadt.example"
ASSISTENZ = "assistenz@musterstadt.example"
SACH = "sachbearbeitung@musterstadt.example"
ALL_SCOPES = frozenset(
    {
        "Mail.ReadWrite.Shared",
        "Mail.Send.Shared",
        "Calendars.ReadWrite.Shared",
        "Contacts.ReadWrite.Shared",
        "Tasks.ReadWrite",
        "User.Read",
    }
)


class Graph:
    """An HTTP client of the lab's Graph face acting as one user (or the daemon app)."""

    def __init__(self, served: GraphLab, user: str | None, scopes: frozenset[str] = ALL_SCOPES):
        self.served = served
        token = served.face.issuer.access_token(
            base_url=served.url,
            now=served.lab.now(),
            client_id=PUBLIC_CLIENT_ID if user else DAEMON_CLIENT_ID,
            user=user,
            scopes=scopes,
            roles=frozenset({"Mail.ReadWrite", "Mail.Send", "Calendars.ReadWrite"})
            if user is None
            else frozenset(),
        )
        self.http = httpx.Client(
            base_url=served.url + "/v1.0",
            verify=ssl.create_default_context(cafile=str(served.ca_file)),
            headers={"Authorization": f"Bearer {token}"},
        )

    def get(self, url: str, **kw: Any) -> httpx.Response:
        return self.http.get(url, **kw)

    def post(self, url: str, body: Any = None, **kw: Any) -> httpx.Response:
        return self.http.post(url, json=body, **kw)

    def patch(self, url: str, body: Any) -> httpx.Response:
        return self.http.patch(url, json=body)

    def delete(self, url: str) -> httpx.Response:
        return self.http.delete(url)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GraphLab]:
    """One demo organisation for the module (seeding costs a second); tests use own data."""
    lab = open_demo()
    with GraphLab(lab, tmp_path_factory.mktemp("graph-tls")) as running:
        yield running
    lab.close()


@pytest.fixture(autouse=True)
def calm_lab(served: GraphLab) -> Iterator[None]:
    yield
    served.lab.knobs.outage = False
    served.lab.knobs.throttle_budget.clear()
    served.lab.knobs.reset_throttle()


@pytest.fixture
def assistenz(served: GraphLab) -> Graph:
    return Graph(served, ASSISTENZ)


@pytest.fixture
def chef(served: GraphLab) -> Graph:
    return Graph(served, CHEF)


@pytest.fixture
def sach(served: GraphLab) -> Graph:
    return Graph(served, SACH)


def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def _error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


def _send(
    graph: Graph,
    mailbox: str,
    to: str,
    subject: str,
    body_text: str = "Bitte um Rückmeldung.",
    **extra: Any,
) -> None:
    message = {
        "subject": subject,
        "body": {"contentType": "text", "content": body_text},
        "toRecipients": [{"emailAddress": {"address": to}}],
        **extra,
    }
    _ok(graph.post(f"/users/{mailbox}/sendMail", {"message": message}), 202)


def _inbox_subjects(graph: Graph, mailbox: str) -> list[str]:
    page = _ok(graph.get(f"/users/{mailbox}/mailFolders/inbox/messages?$top=1000&$select=subject"))
    return [m["subject"] for m in page["value"]]


# -- folders and paging --------------------------------------------------------------------------


def test_mail_folders_are_the_mail_folders_only(assistenz: Graph) -> None:
    names = {f["displayName"] for f in _ok(assistenz.get("/me/mailFolders?$top=50"))["value"]}
    assert {"Posteingang", "Entwürfe", "Gesendete Elemente"} <= names
    assert "Kalender" not in names and "Kontakte" not in names


def test_paging_follows_absolute_next_links_without_duplicates(
    assistenz: Graph, served: GraphLab
) -> None:
    url: str | None = f"/users/{CHEF}/mailFolders/inbox/messages?$top=7&$select=subject"
    seen: list[str] = []
    pages = 0
    while url:
        page = _ok(assistenz.http.get(url))
        seen += [m["id"] for m in page["value"]]
        url = page.get("@odata.nextLink")
        if url:
            assert url.startswith(served.url + "/v1.0/")
        pages += 1
    total = _ok(assistenz.get(f"/users/{CHEF}/mailFolders/inbox"))["totalItemCount"]
    assert len(seen) == len(set(seen)) == total
    assert pages == -(-total // 7)


def test_filter_select_and_orderby(assistenz: Graph) -> None:
    page = _ok(
        assistenz.get(
            f"/users/{CHEF}/mailFolders/inbox/messages",
            params={
                "$filter": "isRead eq false",
                "$select": "subject,isRead,receivedDateTime",
                "$orderby": "receivedDateTime asc",
                "$top": "100",
            },
        )
    )
    values = page["value"]
    assert values and all(m["isRead"] is False for m in values)
    assert set(values[0]) == {"@odata.etag", "id", "subject", "isRead", "receivedDateTime"}
    stamps = [m["receivedDateTime"] for m in values]
    assert stamps == sorted(stamps)


def test_malformed_filter_is_400(assistenz: Graph) -> None:
    _error(assistenz.get("/me/messages", params={"$filter": "subject eq"}), 400, "BadRequest")


# -- rights and tokens ---------------------------------------------------------------------------


def test_user_without_rights_cannot_read_the_boss_mailbox(sach: Graph) -> None:
    _error(sach.get(f"/users/{CHEF}/mailFolders/inbox/messages"), 403, "ErrorAccessDenied")
    _error(sach.get(f"/users/{CHEF}/messages"), 403, "ErrorAccessDenied")


def test_own_scope_without_shared_does_not_reach_other_mailboxes(served: GraphLab) -> None:
    own_only = Graph(served, ASSISTENZ, frozenset({"Mail.ReadWrite"}))
    _ok(own_only.get("/me/messages?$top=1"))
    _error(own_only.get(f"/users/{CHEF}/mailFolders/inbox/messages"), 403, "ErrorAccessDenied")


def test_private_items_are_hidden_from_a_delegate_without_view_private(
    chef: Graph, assistenz: Graph
) -> None:
    created = _ok(
        chef.post(
            "/me/events",
            {
                "subject": "Arzttermin",
                "sensitivity": "private",
                "start": {"dateTime": "2027-03-01T10:00:00", "timeZone": "W. Europe Standard Time"},
                "end": {"dateTime": "2027-03-01T11:00:00", "timeZone": "W. Europe Standard Time"},
            },
        ),
        201,
    )
    window = {"startDateTime": "2027-03-01T00:00:00Z", "endDateTime": "2027-03-02T00:00:00Z"}

    def subjects(graph: Graph) -> list[str]:
        page = _ok(graph.get(f"/users/{CHEF}/calendarView", params=window))
        return [e["subject"] for e in page["value"]]

    assert "Arzttermin" in subjects(chef)
    assert "Arzttermin" not in subjects(assistenz)
    _error(assistenz.get(f"/users/{CHEF}/events/{created['id']}"), 403, "ErrorAccessDenied")


@pytest.mark.parametrize(
    ("header", "message"),
    [(None, "empty"), ("Bearer not-a-jwt", "well formed"), ("Basic Zm9vOmJhcg==", "empty")],
)
def test_bad_tokens_are_401_with_graphs_error(
    served: GraphLab, header: str | None, message: str
) -> None:
    headers = {"Authorization": header} if header else {}
    with httpx.Client(verify=ssl.create_default_context(cafile=str(served.ca_file))) as http:
        answer = http.get(f"{served.url}/v1.0/me", headers=headers)
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert message in answer.json()["error"]["message"]
    assert answer.headers["www-authenticate"].startswith("Bearer")


def test_expired_token_is_401(served: GraphLab) -> None:
    token = served.face.issuer.access_token(
        base_url=served.url,
        now=served.lab.now() - timedelta(hours=3),
        client_id=PUBLIC_CLIENT_ID,
        user=ASSISTENZ,
        scopes=ALL_SCOPES,
    )
    with httpx.Client(verify=ssl.create_default_context(cafile=str(served.ca_file))) as http:
        answer = http.get(f"{served.url}/v1.0/me", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 401 and "expired" in answer.json()["error"]["message"]


def test_app_only_reaches_any_mailbox_but_not_me(served: GraphLab) -> None:
    app = Graph(served, None)
    _error(app.get("/me/messages"), 400, "BadRequest")
    assert _ok(app.get(f"/users/{CHEF}/mailFolders/inbox/messages?$top=1"))["value"]


# -- messages ------------------------------------------------------------------------------------


def test_draft_flag_categories_move_and_delete(assistenz: Graph) -> None:
    draft = _ok(
        assistenz.post(
            "/me/messages",
            {"subject": "Entwurf", "toRecipients": [{"emailAddress": {"address": SACH}}]},
        ),
        201,
    )
    assert draft["isDraft"] is True
    changed = _ok(
        assistenz.patch(
            f"/me/messages/{draft['id']}",
            {"flag": {"flagStatus": "flagged"}, "categories": ["Rot"], "importance": "high"},
        )
    )
    assert changed["flag"]["flagStatus"] == "flagged"
    assert changed["categories"] == ["Rot"] and changed["importance"] == "high"
    assert changed["changeKey"] != draft["changeKey"]
    moved = _ok(assistenz.post(f"/me/messages/{draft['id']}/move", {"destinationId": "inbox"}), 201)
    inbox = _ok(assistenz.get("/me/mailFolders/inbox"))
    assert moved["parentFolderId"] == inbox["id"]
    _ok(assistenz.delete(f"/me/messages/{moved['id']}"), 204)
    deleted = _ok(assistenz.get("/me/mailFolders/deleteditems/messages?$select=subject"))
    assert "Entwurf" in [m["subject"] for m in deleted["value"]]


def test_unknown_property_is_400_and_changes_nothing(assistenz: Graph) -> None:
    before = _ok(assistenz.get("/me/mailFolders/drafts"))["totalItemCount"]
    _error(
        assistenz.post("/me/messages", {"subject": "x", "colour": "blue"}), 400, "RequestBodyRead"
    )
    assert _ok(assistenz.get("/me/mailFolders/drafts"))["totalItemCount"] == before


def test_send_on_behalf_of_the_boss(assistenz: Graph, sach: Graph) -> None:
    _send(assistenz, CHEF, SACH, "Im Auftrag")
    found = _ok(
        sach.get("/me/mailFolders/inbox/messages", params={"$filter": "subject eq 'Im Auftrag'"})
    )["value"]
    assert found[0]["from"]["emailAddress"]["address"] == CHEF
    assert found[0]["sender"]["emailAddress"]["address"] == ASSISTENZ


def test_sending_for_someone_without_delegation_is_refused(sach: Graph, assistenz: Graph) -> None:
    answer = sach.post(
        f"/users/{CHEF}/sendMail",
        {
            "message": {
                "subject": "Fälschung",
                "toRecipients": [{"emailAddress": {"address": ASSISTENZ}}],
            }
        },
    )
    assert answer.status_code == 403
    assert "Fälschung" not in _inbox_subjects(assistenz, ASSISTENZ)


def test_send_a_draft_with_an_attachment(assistenz: Graph, sach: Graph) -> None:
    draft = _ok(
        assistenz.post(
            "/me/messages",
            {
                "subject": "Mit Anhang",
                "toRecipients": [{"emailAddress": {"address": SACH}}],
                "attachments": [
                    {
                        "@odata.type": "#microsoft.graph.fileAttachment",
                        "name": "plan.txt",
                        "contentType": "text/plain",
                        "contentBytes": "SGFsbG8=",
                    }
                ],
            },
        ),
        201,
    )
    _ok(assistenz.post(f"/me/messages/{draft['id']}/send"), 202)
    got = _ok(
        sach.get("/me/mailFolders/inbox/messages", params={"$filter": "subject eq 'Mit Anhang'"})
    )["value"][0]
    assert got["hasAttachments"] is True
    atts = _ok(sach.get(f"/me/messages/{got['id']}/attachments"))["value"]
    full = _ok(sach.get(f"/me/messages/{got['id']}/attachments/{atts[0]['id']}"))
    assert full["name"] == "plan.txt" and full["contentBytes"] == "SGFsbG8="


def test_message_delta_reports_new_and_removed_mail(chef: Graph, assistenz: Graph) -> None:
    url: str | None = "/me/mailFolders/inbox/messages/delta"
    first: list[dict[str, Any]] = []
    delta_link = None
    while url:
        page = _ok(chef.http.get(url, headers={"Prefer": "odata.maxpagesize=50"}))
        first += page["value"]
        url = page.get("@odata.nextLink")
        delta_link = page.get("@odata.deltaLink", delta_link)
    assert first and delta_link
    _send(assistenz, ASSISTENZ, CHEF, "Neu seit dem Abgleich")
    second = _ok(chef.http.get(delta_link))
    assert [m["subject"] for m in second["value"]] == ["Neu seit dem Abgleich"]
    _ok(chef.delete(f"/me/messages/{second['value'][0]['id']}"), 204)
    third = _ok(chef.http.get(second["@odata.deltaLink"]))
    assert [m.get("@removed") for m in third["value"]] == [{"reason": "deleted"}]


# -- calendar ------------------------------------------------------------------------------------


def _weekly(graph: Graph, mailbox: str, subject: str, **extra: Any) -> dict[str, Any]:
    body = {
        "subject": subject,
        "start": {"dateTime": "2027-01-04T09:00:00", "timeZone": "W. Europe Standard Time"},
        "end": {"dateTime": "2027-01-04T09:30:00", "timeZone": "W. Europe Standard Time"},
        "recurrence": {
            "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]},
            "range": {"type": "numbered", "startDate": "2027-01-04", "numberOfOccurrences": 4},
        },
        **extra,
    }
    created: dict[str, Any] = _ok(graph.post(f"/users/{mailbox}/events", body), 201)
    return created


def test_calendar_view_expands_a_series_in_the_preferred_time_zone(assistenz: Graph) -> None:
    master = _weekly(assistenz, CHEF, "Jour fixe 2027")
    assert master["type"] == "seriesMaster"
    view = _ok(
        assistenz.get(
            f"/users/{CHEF}/calendarView",
            params={
                "startDateTime": "2027-01-01T00:00:00Z",
                "endDateTime": "2027-02-01T00:00:00Z",
                "$top": "50",
            },
            headers={"Prefer": 'outlook.timezone="W. Europe Standard Time"'},
        )
    )
    mine = [e for e in view["value"] if e["subject"] == "Jour fixe 2027"]
    assert [e["start"]["dateTime"][:16] for e in mine] == [
        "2027-01-04T09:00",
        "2027-01-11T09:00",
        "2027-01-18T09:00",
        "2027-01-25T09:00",
    ]
    assert {e["type"] for e in mine} == {"occurrence"}
    assert {e["seriesMasterId"] for e in mine} == {master["id"]}
    assert mine[0]["start"]["timeZone"] == "W. Europe Standard Time"


def test_deleting_and_moving_occurrences(assistenz: Graph) -> None:
    master = _weekly(assistenz, CHEF, "Serie")
    window = {"startDateTime": "2027-01-01T00:00:00Z", "endDateTime": "2027-02-01T00:00:00Z"}
    occurrences = _ok(
        assistenz.get(f"/users/{CHEF}/events/{master['id']}/instances", params=window)
    )
    second, third = occurrences["value"][1], occurrences["value"][2]
    _ok(assistenz.delete(f"/users/{CHEF}/events/{second['id']}"), 204)
    moved = _ok(
        assistenz.patch(
            f"/users/{CHEF}/events/{third['id']}",
            {
                "start": {"dateTime": "2027-01-19T14:00:00", "timeZone": "UTC"},
                "end": {"dateTime": "2027-01-19T14:30:00", "timeZone": "UTC"},
            },
        )
    )
    assert moved["type"] == "exception"
    after = _ok(assistenz.get(f"/users/{CHEF}/events/{master['id']}/instances", params=window))
    starts = [e["start"]["dateTime"][:16] for e in after["value"]]
    assert starts == ["2027-01-04T08:00", "2027-01-19T14:00", "2027-01-25T08:00"]


def test_meeting_invitation_and_delegate_accepts_for_the_boss(
    sach: Graph, assistenz: Graph
) -> None:
    _ok(
        sach.post(
            "/me/events",
            {
                "subject": "Breitband Abstimmung",
                "start": {"dateTime": "2027-02-03T10:00:00", "timeZone": "UTC"},
                "end": {"dateTime": "2027-02-03T11:00:00", "timeZone": "UTC"},
                "attendees": [{"type": "required", "emailAddress": {"address": CHEF}}],
            },
        ),
        201,
    )
    window = {"startDateTime": "2027-02-03T00:00:00Z", "endDateTime": "2027-02-04T00:00:00Z"}
    boss_view = _ok(assistenz.get(f"/users/{CHEF}/calendarView", params=window))["value"]
    meeting = next(e for e in boss_view if e["subject"] == "Breitband Abstimmung")
    assert meeting["responseStatus"]["response"] == "notResponded"
    _ok(assistenz.post(f"/users/{CHEF}/events/{meeting['id']}/accept", {"comment": "Passt."}), 202)
    again = _ok(assistenz.get(f"/users/{CHEF}/events/{meeting['id']}"))
    assert again["responseStatus"]["response"] == "accepted"
    organizer_view = _ok(sach.get("/me/calendarView", params=window))["value"]
    attendee = organizer_view[0]["attendees"][0]
    assert attendee["emailAddress"]["address"] == CHEF
    assert attendee["status"]["response"] == "accepted"


def test_calendar_view_needs_a_window(assistenz: Graph) -> None:
    _error(assistenz.get("/me/calendarView"), 400, "ErrorInvalidParameter")


@pytest.mark.timeout(60)
def test_calendar_view_longer_than_two_years_is_a_400(assistenz: Graph) -> None:
    window = {"startDateTime": "2026-11-25T00:00:00Z", "endDateTime": "2296-11-25T00:00:00Z"}
    answer = assistenz.get(f"/users/{CHEF}/calendarView", params=window)
    _error(answer, 400, "ErrorInvalidParameter")
    assert "two years" in answer.json()["error"]["message"]
    window["endDateTime"] = "2028-11-25T00:00:00Z"
    _ok(assistenz.get(f"/users/{CHEF}/calendarView", params=window))


# -- contacts ------------------------------------------------------------------------------------


def test_contacts_create_list_and_patch(assistenz: Graph) -> None:
    created = _ok(
        assistenz.post(
            "/me/contacts",
            {
                "givenName": "Ute",
                "surname": "Brandt",
                "emailAddresses": [{"address": "ute.brandt@example.org"}],
                "businessPhones": ["+49 30 1234"],
            },
        ),
        201,
    )
    assert created["displayName"] == "Ute Brandt"
    _ok(assistenz.patch(f"/me/contacts/{created['id']}", {"mobilePhone": "+49 170 1"}))
    listed = _ok(assistenz.get("/me/contacts", params={"$filter": "surname eq 'Brandt'"}))
    assert listed["value"][0]["mobilePhone"] == "+49 170 1"
    assert listed["value"][0]["businessPhones"] == ["+49 30 1234"]


# -- faults and batch ----------------------------------------------------------------------------


def test_throttling_answers_429_with_retry_after(served: GraphLab, assistenz: Graph) -> None:
    served.lab.knobs.throttle_budget[ASSISTENZ] = 2
    assert assistenz.get("/me").status_code == 200
    assert assistenz.get("/me").status_code == 200
    busy = assistenz.get("/me")
    assert busy.status_code == 429
    assert int(busy.headers["retry-after"]) >= 1
    assert busy.json()["error"]["code"] == "ApplicationThrottled"


def test_outage_answers_503_with_retry_after(served: GraphLab, assistenz: Graph) -> None:
    served.lab.knobs.outage = True
    down = assistenz.get("/me")
    assert down.status_code == 503 and down.headers["retry-after"]
    served.lab.knobs.outage = False
    assert assistenz.get("/me").status_code == 200


def test_batch_runs_each_request_and_answers_by_id(assistenz: Graph) -> None:
    answer = _ok(
        assistenz.post(
            "/$batch",
            {
                "requests": [
                    {
                        "id": "1",
                        "method": "GET",
                        "url": "/me/mailFolders/inbox?$select=displayName",
                    },
                    {"id": "2", "method": "GET", "url": f"/users/{CHEF}/mailFolders/inbox"},
                    {"id": "3", "method": "GET", "url": "/me/messages/bm90LWFuLWlk"},
                ]
            },
        )
    )
    by_id = {r["id"]: r for r in answer["responses"]}
    assert by_id["1"]["status"] == 200 and by_id["1"]["body"]["displayName"] == "Posteingang"
    assert by_id["2"]["status"] == 200
    assert by_id["3"]["status"] == 400


def test_sensitivity_comes_as_the_mapi_property_on_expand(chef: Graph) -> None:
    page = _ok(
        chef.get(
            "/me/mailFolders/inbox/messages",
            params={
                "$top": "300",
                "$select": "subject",
                "$expand": "singleValueExtendedProperties($filter=id eq 'Integer 0x36')",
            },
        )
    )
    values = {p["value"] for m in page["value"] for p in m["singleValueExtendedProperties"]}
    assert "2" in values  # the demo boss has private mail
    assert set(page["value"][0]) >= {"subject", "singleValueExtendedProperties"}


def test_meeting_requests_are_event_messages_with_their_event(assistenz: Graph) -> None:
    page = _ok(assistenz.get(f"/users/{CHEF}/mailFolders/inbox/messages?$top=300"))
    requests = [m for m in page["value"] if m.get("meetingMessageType") == "meetingRequest"]
    assert requests and requests[0]["@odata.type"] == "#microsoft.graph.eventMessageRequest"
    expanded = _ok(
        assistenz.get(
            f"/users/{CHEF}/messages/{requests[0]['id']}",
            params={"$expand": "microsoft.graph.eventMessage/event"},
        )
    )
    assert expanded["event"]["subject"] and expanded["event"]["type"] in (
        "singleInstance",
        "seriesMaster",
    )


def test_sent_on_behalf_copy_lands_in_the_owners_sent_items(assistenz: Graph, chef: Graph) -> None:
    _send(assistenz, CHEF, SACH, "Kopie beim Chef")
    sent = _ok(chef.get("/me/mailFolders/sentitems/messages?$top=100&$select=subject"))
    assert "Kopie beim Chef" in [m["subject"] for m in sent["value"]]


def test_contact_folders_and_mime(assistenz: Graph) -> None:
    folders = _ok(assistenz.get("/me/contactFolders"))["value"]
    assert [f.get("wellKnownName") for f in folders] == ["contacts"]
    first = _ok(assistenz.get(f"/users/{CHEF}/mailFolders/inbox/messages?$top=1"))["value"][0]
    raw = assistenz.get(f"/users/{CHEF}/messages/{first['id']}/$value")
    assert raw.status_code == 200 and b"Subject:" in raw.content


def test_todo_lists_are_the_own_task_folders_only(chef: Graph, assistenz: Graph) -> None:
    lists = _ok(chef.get("/me/todo/lists"))["value"]
    default = next(x for x in lists if x["wellknownListName"] == "defaultList")
    tasks = _ok(chef.get(f"/me/todo/lists/{default['id']}/tasks?$top=50"))["value"]
    assert "Haushaltsrede vorbereiten" in [t["title"] for t in tasks]
    _error(assistenz.get(f"/users/{CHEF}/todo/lists"), 403, "ErrorAccessDenied")


def test_todo_task_create_complete_delete(assistenz: Graph) -> None:
    lists = _ok(assistenz.get("/me/todo/lists"))["value"]
    list_id = lists[0]["id"]
    created = _ok(
        assistenz.post(
            f"/me/todo/lists/{list_id}/tasks",
            {
                "title": "Akte anfordern",
                "dueDateTime": {"dateTime": "2027-01-10T00:00:00", "timeZone": "UTC"},
            },
        ),
        201,
    )
    assert created["status"] == "notStarted"
    done = _ok(
        assistenz.patch(f"/me/todo/lists/{list_id}/tasks/{created['id']}", {"status": "completed"})
    )
    assert done["status"] == "completed" and done["dueDateTime"]["dateTime"].startswith(
        "2027-01-10"
    )
    _ok(assistenz.delete(f"/me/todo/lists/{list_id}/tasks/{created['id']}"), 204)
    _error(
        assistenz.get(f"/me/todo/lists/{list_id}/tasks/{created['id']}"), 404, "ErrorItemNotFound"
    )


def _delta_rounds(graph: Graph, url: str, page_size: int = 2) -> tuple[list[Any], str, int]:
    """Every page of one delta round: (values, deltaLink, pages)."""
    values: list[Any] = []
    pages = 0
    next_url: str | None = url
    while True:
        assert next_url is not None
        page = _ok(graph.http.get(next_url, headers={"Prefer": f"odata.maxpagesize={page_size}"}))
        pages += 1
        values += page["value"]
        assert not ("@odata.nextLink" in page and "@odata.deltaLink" in page)
        if "@odata.deltaLink" in page:
            return values, page["@odata.deltaLink"], pages
        next_url = page["@odata.nextLink"]


def test_todo_task_delta_reports_new_changed_and_removed_tasks(served: GraphLab) -> None:
    token = served.face.issuer.access_token(
        base_url=served.url,
        now=served.lab.now(),
        client_id=DAEMON_CLIENT_ID,
        user=None,
        scopes=frozenset(),
        roles=frozenset({"Tasks.ReadWrite.All"}),
    )
    app = Graph(served, None)
    app.http.headers["Authorization"] = f"Bearer {token}"
    lists = _ok(app.get(f"/users/{CHEF}/todo/lists"))["value"]
    default = next(x for x in lists if x["wellknownListName"] == "defaultList")
    tasks_url = f"/users/{CHEF}/todo/lists/{default['id']}/tasks"
    everything = _ok(app.get(tasks_url))["value"]
    first, link, pages = _delta_rounds(app, f"{tasks_url}/delta")
    assert sorted(t["id"] for t in first) == sorted(t["id"] for t in everything)
    assert pages > 1  # paged with nextLinks, the deltaLink on the last page only
    again, link, _ = _delta_rounds(app, link)
    assert again == []
    created = _ok(app.post(tasks_url, {"title": "Grußwort Feuerwehrfest"}), 201)
    news, link, _ = _delta_rounds(app, link)
    assert [(t["id"], t["title"]) for t in news] == [(created["id"], "Grußwort Feuerwehrfest")]
    assert news[0]["createdDateTime"] == news[0]["lastModifiedDateTime"]
    _ok(app.patch(f"{tasks_url}/{created['id']}", {"status": "completed"}))
    changed, link, _ = _delta_rounds(app, link)
    assert [t["status"] for t in changed] == ["completed"]
    _ok(app.delete(f"{tasks_url}/{created['id']}"), 204)
    removed, _, _ = _delta_rounds(app, link)
    assert removed == [
        {
            "@odata.type": "#microsoft.graph.todoTask",
            "id": created["id"],
            "@removed": {"reason": "deleted"},
        }
    ]


def test_todo_task_delta_refuses_tokens_it_did_not_give_for_that_list(
    chef: Graph, assistenz: Graph
) -> None:
    chefs = next(
        x
        for x in _ok(chef.get("/me/todo/lists"))["value"]
        if x["wellknownListName"] == "defaultList"
    )
    _, link, _ = _delta_rounds(chef, f"/me/todo/lists/{chefs['id']}/tasks/delta", 100)
    token = link.partition("$deltatoken=")[2]
    assert token
    own = _ok(assistenz.get("/me/todo/lists"))["value"][0]["id"]
    _error(
        assistenz.get(f"/me/todo/lists/{own}/tasks/delta", params={"$deltatoken": token}),
        400,
        "SyncStateNotFound",
    )
    _error(
        chef.get(f"/me/todo/lists/{chefs['id']}/tasks/delta", params={"$deltatoken": "kaputt!"}),
        400,
        "SyncStateNotFound",
    )
    # Another user's lists stay closed to a delegate, delta included.
    _error(
        assistenz.get(f"/users/{CHEF}/todo/lists/{chefs['id']}/tasks/delta"),
        403,
        "ErrorAccessDenied",
    )


def test_calendar_view_delta_reports_new_and_removed_events(chef: Graph) -> None:
    window = {"startDateTime": "2027-09-01T00:00:00Z", "endDateTime": "2027-09-30T00:00:00Z"}
    first = _ok(chef.get("/me/calendarView/delta", params=window))
    assert "@odata.deltaLink" in first
    created = _ok(
        chef.post(
            "/me/events",
            {
                "subject": "Klausur im September",
                "start": {"dateTime": "2027-09-10T08:00:00", "timeZone": "UTC"},
                "end": {"dateTime": "2027-09-10T12:00:00", "timeZone": "UTC"},
            },
        ),
        201,
    )
    second = _ok(chef.http.get(first["@odata.deltaLink"]))
    assert [e["subject"] for e in second["value"]] == ["Klausur im September"]
    _ok(chef.delete(f"/me/events/{created['id']}"), 204)
    third = _ok(chef.http.get(second["@odata.deltaLink"]))
    assert [e.get("@removed") for e in third["value"]] == [{"reason": "deleted"}]
    assert third["value"][0]["id"] == created["id"]


@pytest.mark.parametrize(
    ("method", "url", "content", "status", "code"),
    [
        ("POST", "/me/messages", b"{not json", 400, "BadRequest"),
        ("GET", "/me/messages/!!!", None, 400, "ErrorInvalidIdMalformed"),
        ("GET", "/me/messages?$top=0", None, 400, "BadRequest"),
        ("GET", "/me/messages?$skip=minus", None, 400, "BadRequest"),
        ("GET", "/me/somethingElse", None, 400, "BadRequest"),
        ("PUT", "/me/mailFolders", None, 405, "Request_BadRequest"),
        ("GET", "/users/niemand@musterstadt.example/messages", None, 404, "ErrorInvalidUser"),
    ],
)
def test_bad_requests_get_graphs_error_answers(
    assistenz: Graph, method: str, url: str, content: bytes | None, status: int, code: str
) -> None:
    headers = {"Content-Type": "application/json"} if content else {}
    _error(assistenz.http.request(method, url, content=content, headers=headers), status, code)


def test_send_from_the_functional_mailbox(assistenz: Graph, chef: Graph) -> None:
    _send(assistenz, "poststelle@musterstadt.example", CHEF, "Eingangsbestätigung")
    page = _ok(
        chef.get(
            "/me/mailFolders/inbox/messages", params={"$filter": "subject eq 'Eingangsbestätigung'"}
        )
    )
    got = page["value"][0]
    assert got["from"]["emailAddress"]["address"] == "poststelle@musterstadt.example"
    # The team holds SendAs on the functional mailbox: sent as it, not on its behalf.
    assert got["sender"]["emailAddress"]["address"] == "poststelle@musterstadt.example"


def test_search_looks_into_bodies_and_takes_no_orderby(assistenz: Graph, sach: Graph) -> None:
    _send(assistenz, ASSISTENZ, SACH, "Unauffälliger Betreff", body_text="Stichwort Zuckerrübe")
    found = _ok(sach.get("/me/messages", params={"$search": '"zuckerrübe"'}))["value"]
    assert [m["subject"] for m in found] == ["Unauffälliger Betreff"]
    _error(
        sach.get("/me/messages", params={"$search": '"x"', "$orderby": "subject"}),
        400,
        "ErrorInvalidUrlQuery",
    )
