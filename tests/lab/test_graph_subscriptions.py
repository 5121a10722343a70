"""The lab's Graph face: `/subscriptions`, the validation handshake and notification POSTs."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from exlab.demo import open_demo
from exlab.graph.serve import GraphLab
from med.backends.graph.events import NotificationListener
from tests.lab.test_graph_api import ASSISTENZ, CHEF, SACH, Graph, _error, _ok, _send


@pytest.fixture
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GraphLab]:
    lab = open_demo()
    with GraphLab(lab, tmp_path_factory.mktemp("graph-tls")) as running:
        yield running
    lab.close()


@pytest.fixture
def listener() -> Iterator[NotificationListener]:
    made = NotificationListener("127.0.0.1")
    yield made
    made.close()


def _body(url: str, state: str | None, resource: str, **extra: Any) -> dict[str, Any]:
    return {
        "changeType": "created,updated,deleted",
        "notificationUrl": url,
        "resource": resource,
        "clientState": state,
        **extra,
    }


def test_notifications_carry_client_state_and_the_new_message_id(
    served: GraphLab, listener: NotificationListener
) -> None:
    assistenz, sach = Graph(served, ASSISTENZ), Graph(served, SACH)
    inbox = _ok(assistenz.get(f"/users/{CHEF}/mailFolders/inbox"))
    resource = f"users/{CHEF}/mailFolders('{inbox['id']}')/messages"
    sub = _ok(
        assistenz.post("/subscriptions", _body(listener.url, listener.client_state, resource)),
        201,
    )
    assert sub["resource"] == resource and sub["clientState"] == listener.client_state
    _send(sach, SACH, CHEF, "Benachrichtigt")
    note = listener.notifications.get(timeout=10)
    assert (note["subscriptionId"], note["changeType"]) == (sub["id"], "created")
    message = _ok(assistenz.get(f"/users/{CHEF}/messages/{note['resourceData']['id']}"))
    assert message["subject"] == "Benachrichtigt"
    assert listener.rejected == 0


def test_unreachable_notification_url_fails_validation(served: GraphLab) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assistenz = Graph(served, ASSISTENZ)
    answer = assistenz.post(
        "/subscriptions",
        _body(f"http://127.0.0.1:{port}/x", "s", "me/mailFolders('inbox')/messages"),
    )
    _error(answer, 400, "ValidationError")
    assert _ok(assistenz.get("/subscriptions"))["value"] == []


def test_lifetime_is_capped_renewal_and_delete_only_by_the_owner(
    served: GraphLab, listener: NotificationListener
) -> None:
    assistenz, chef = Graph(served, ASSISTENZ), Graph(served, CHEF)
    far = (served.lab.now() + timedelta(days=30)).isoformat()
    sub = _ok(
        assistenz.post(
            "/subscriptions",
            _body(listener.url, "s", "me/calendars('calendar')/events", expirationDateTime=far),
        ),
        201,
    )
    expires = datetime.fromisoformat(sub["expirationDateTime"].replace("0Z", "+00:00"))
    assert expires <= served.lab.now() + timedelta(minutes=4230)
    _error(chef.delete(f"/subscriptions/{sub['id']}"), 404, "ResourceNotFound")
    soon = (served.lab.now() + timedelta(hours=2)).isoformat()
    renewed = _ok(assistenz.patch(f"/subscriptions/{sub['id']}", {"expirationDateTime": soon}))
    assert renewed["expirationDateTime"] != sub["expirationDateTime"]
    _ok(assistenz.delete(f"/subscriptions/{sub['id']}"), 204)
    assert _ok(assistenz.get("/subscriptions"))["value"] == []


@pytest.mark.parametrize(
    ("user", "body", "status", "code"),
    [
        (ASSISTENZ, {"changeType": "created", "resource": "me/contacts"}, 400, "InvalidRequest"),
        (
            ASSISTENZ,
            {"changeType": "renamed", "resource": "me/mailFolders('inbox')/messages"},
            400,
            "InvalidRequest",
        ),
        (
            SACH,
            {"changeType": "created", "resource": f"users/{CHEF}/mailFolders('inbox')/messages"},
            403,
            "ErrorAccessDenied",
        ),
    ],
)
def test_bad_subscriptions_are_refused(
    served: GraphLab,
    listener: NotificationListener,
    user: str,
    body: dict[str, str],
    status: int,
    code: str,
) -> None:
    graph = Graph(served, user)
    _error(graph.post("/subscriptions", {**body, "notificationUrl": listener.url}), status, code)
    assert _ok(graph.get("/subscriptions"))["value"] == []


def test_an_app_subscribes_to_any_users_folder_and_sees_only_its_own_subscriptions(
    served: GraphLab, listener: NotificationListener
) -> None:
    app, assistenz, sach = Graph(served, None), Graph(served, ASSISTENZ), Graph(served, SACH)
    _error(
        app.post("/subscriptions", _body(listener.url, "s", "me/mailFolders('inbox')/messages")),
        400,
        "BadRequest",
    )
    inbox = _ok(app.get(f"/users/{CHEF}/mailFolders/inbox"))
    resource = f"users/{CHEF}/mailFolders('{inbox['id']}')/messages"
    sub = _ok(app.post("/subscriptions", _body(listener.url, listener.client_state, resource)), 201)
    _send(sach, SACH, CHEF, "An die Anwendung")
    note = listener.notifications.get(timeout=10)
    assert (note["subscriptionId"], note["changeType"]) == (sub["id"], "created")
    assert [s["id"] for s in _ok(app.get("/subscriptions"))["value"]] == [sub["id"]]
    assert _ok(assistenz.get("/subscriptions"))["value"] == []
    _error(assistenz.delete(f"/subscriptions/{sub['id']}"), 404, "ResourceNotFound")
    _ok(app.delete(f"/subscriptions/{sub['id']}"), 204)
