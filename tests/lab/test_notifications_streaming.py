"""Streaming notifications as a sequence of complete SOAP envelopes, and subscription rights."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from defusedxml.ElementTree import fromstring

from bridge.demo import LabThread
from exlab import Lab
from exlab.ews.notifications import stream_envelopes
from exlab.ews.soap import EwsContext
from tests.lab.items_soap import ASSISTENZ, CHEF, NS, M, T, call, codes, demo_lab
from tests.lab.schema import assert_valid_ews

SACHBEARBEITUNG = "sachbearbeitung@musterstadt.example"
CHEF_INBOX = (
    f'<t:DistinguishedFolderId Id="inbox"><t:Mailbox><t:EmailAddress>{CHEF}'
    "</t:EmailAddress></t:Mailbox></t:DistinguishedFolderId>"
)


@pytest.fixture
def lab() -> Iterator[Lab]:
    yield from demo_lab()


def subscribe_streaming(lab: Lab, user: str, folder: str) -> tuple[str, str]:
    messages = call(
        lab,
        user,
        f"<m:Subscribe><m:StreamingSubscriptionRequest><t:FolderIds>{folder}</t:FolderIds>"
        "<t:EventTypes><t:EventType>NewMailEvent</t:EventType>"
        "<t:EventType>ModifiedEvent</t:EventType></t:EventTypes>"
        "</m:StreamingSubscriptionRequest></m:Subscribe>",
    )
    return codes(messages)[0], messages[0].findtext(f"{M}SubscriptionId", "")


def send_to_chef(lab: Lab, subject: str, sensitivity: str = "Normal") -> None:
    call(
        lab,
        SACHBEARBEITUNG,
        '<m:CreateItem MessageDisposition="SendOnly"><m:Items><t:Message>'
        f"<t:Subject>{subject}</t:Subject><t:Sensitivity>{sensitivity}</t:Sensitivity>"
        f"<t:ToRecipients><t:Mailbox><t:EmailAddress>{CHEF}</t:EmailAddress></t:Mailbox>"
        "</t:ToRecipients></t:Message></m:Items></m:CreateItem>",
    )


def request(sub_id: str) -> ET.Element:
    el: ET.Element = fromstring(
        f"<m:GetStreamingEvents {NS}><m:SubscriptionIds><t:SubscriptionId>{sub_id}"
        "</t:SubscriptionId></m:SubscriptionIds><m:ConnectionTimeout>1</m:ConnectionTimeout>"
        "</m:GetStreamingEvents>"
    )
    return el


def test_stream_yields_an_envelope_per_batch_then_heartbeats(lab: Lab) -> None:
    code, sub_id = subscribe_streaming(lab, ASSISTENZ, CHEF_INBOX)
    assert code == "NoError"
    send_to_chef(lab, "Erste Nachricht")
    ctx = EwsContext(lab=lab, user=ASSISTENZ)
    chunks = stream_envelopes(ctx, request(sub_id), heartbeat_s=0.0, poll_s=0.0)
    first = next(chunks)
    assert_valid_ews(first)
    root = fromstring(first)
    events = root.findall(f".//{T}Notification/{T}NewMailEvent")
    assert len(events) == 1
    assert root.findtext(f".//{M}ConnectionStatus") == "OK"
    heartbeat = next(chunks)
    assert_valid_ews(heartbeat)
    assert fromstring(heartbeat).find(f".//{T}Notification") is None
    send_to_chef(lab, "Zweite Nachricht")
    second = next(c for c in chunks if b"NewMailEvent" in c)
    assert len(fromstring(second).findall(f".//{T}NewMailEvent")) == 1
    chunks.close()


def test_an_open_stream_ends_quietly_when_the_lab_shuts_down(lab: Lab) -> None:
    _, sub_id = subscribe_streaming(lab, ASSISTENZ, CHEF_INBOX)
    ctx = EwsContext(lab=lab, user=ASSISTENZ)
    chunks = stream_envelopes(ctx, request(sub_id), heartbeat_s=0.0, poll_s=0.0)
    next(chunks)
    lab.close()
    assert list(chunks) == []


def test_private_mail_raises_no_event_for_delegate(lab: Lab) -> None:
    _, sub_id = subscribe_streaming(lab, ASSISTENZ, CHEF_INBOX)
    send_to_chef(lab, "Nur für Anna", sensitivity="Private")
    ctx = EwsContext(lab=lab, user=ASSISTENZ)
    chunks = stream_envelopes(ctx, request(sub_id), heartbeat_s=0.0, poll_s=0.0)
    assert b"NewMailEvent" not in next(chunks)
    chunks.close()


def test_subscribing_to_a_folder_without_read_rights_is_denied(lab: Lab) -> None:
    code, sub_id = subscribe_streaming(lab, SACHBEARBEITUNG, CHEF_INBOX)
    assert code == "ErrorAccessDenied" and not sub_id


def test_someone_elses_subscription_cannot_be_read(lab: Lab) -> None:
    _, sub_id = subscribe_streaming(lab, ASSISTENZ, CHEF_INBOX)
    messages = call(
        lab,
        CHEF,
        f"<m:Unsubscribe><m:SubscriptionId>{sub_id}</m:SubscriptionId></m:Unsubscribe>",
    )
    assert codes(messages) == ["ErrorSubscriptionAccessDenied"]


def test_streaming_answer_only_takes_get_streaming_events(lab: Lab) -> None:
    from exlab.ews.notifications import streaming_answer
    from tests.lab.items_soap import envelope

    assert streaming_answer(lab, CHEF, envelope("<m:GetItem/>")) is None
    assert streaming_answer(lab, CHEF, b"<not xml") is None
    _, sub_id = subscribe_streaming(lab, CHEF, '<t:DistinguishedFolderId Id="inbox"/>')
    body = envelope(
        f"<m:GetStreamingEvents><m:SubscriptionIds><t:SubscriptionId>{sub_id}"
        "</t:SubscriptionId></m:SubscriptionIds><m:ConnectionTimeout>1</m:ConnectionTimeout>"
        "</m:GetStreamingEvents>"
    )
    chunks = streaming_answer(lab, CHEF, body)
    assert chunks is not None
    chunks.close()


def test_exchangelib_reads_chunked_streaming_notifications(tmp_path: Path) -> None:
    from exchangelib import BASIC, DELEGATE, Account, Build, Configuration, Credentials, Version
    from exchangelib import Mailbox as ExMailbox
    from exchangelib import Message as ExMessage

    with LabThread(tmp_path / "lab.sqlite") as served:
        url = served.ews_url

        def account(user: str) -> Account:
            config = Configuration(
                service_endpoint=url,
                credentials=Credentials(user, "Demo-2026!"),
                auth_type=BASIC,
                version=Version(build=Build(15, 1)),
            )
            return Account(CHEF, access_type=DELEGATE, config=config, autodiscover=False)

        try:
            delegate = account(ASSISTENZ)
            subscription = delegate.inbox.subscribe_to_streaming()
            ExMessage(
                account=account(CHEF),
                subject="Gestreamt",
                to_recipients=[ExMailbox(email_address=CHEF)],
            ).send(save_copy=False)
            seen = []
            events = delegate.inbox.get_streaming_events(subscription, connection_timeout=1)
            for notification in events:
                seen.extend(type(e).__name__ for e in notification.events)
                if "NewMailEvent" in seen:
                    break
            assert "NewMailEvent" in seen
        finally:
            from exchangelib.protocol import close_connections

            close_connections()


def test_the_server_streams_events_in_chunks_while_the_connection_stays_open(
    tmp_path: Path,
) -> None:
    import httpx

    from tests.lab.items_soap import envelope

    with LabThread(tmp_path / "lab.sqlite") as served:
        lab, url = served.lab, served.ews_url
        _, sub_id = subscribe_streaming(lab, ASSISTENZ, CHEF_INBOX)
        send_to_chef(lab, "Erster Eingang")
        body = envelope(
            "<m:GetStreamingEvents><m:SubscriptionIds>"
            f"<t:SubscriptionId>{sub_id}</t:SubscriptionId></m:SubscriptionIds>"
            "<m:ConnectionTimeout>1</m:ConnectionTimeout></m:GetStreamingEvents>"
        )
        with httpx.stream(
            "POST", url, content=body, auth=(ASSISTENZ, "Demo-2026!"), timeout=30
        ) as answer:
            assert answer.status_code == 200
            assert answer.headers.get("transfer-encoding") == "chunked"
            first = next(answer.iter_bytes())
            assert b"NewMailEvent" in first
