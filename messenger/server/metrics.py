"""Prometheus metrics of one server instance (own registry, so tests can run many apps)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "messenger_http_requests",
            "HTTP requests by route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.messages = Counter(
            "messenger_messages_sent", "Conversation messages stored", registry=self.registry
        )
        self.duplicates = Counter(
            "messenger_duplicate_sends",
            "Sends answered from a repeated txn_id",
            registry=self.registry,
        )
        self.to_device = Counter(
            "messenger_to_device_sent", "To-device envelopes stored", registry=self.registry
        )
        self.delivered = Counter(
            "messenger_events_delivered", "Events written to WebSockets", registry=self.registry
        )
        self.connections = Gauge(
            "messenger_websocket_connections", "Open WebSocket streams", registry=self.registry
        )
        self.uploaded = Counter(
            "messenger_attachment_bytes", "Attachment bytes accepted", registry=self.registry
        )
        self.purged = Counter(
            "messenger_purged", "Rows removed by retention", ["kind"], registry=self.registry
        )
        self.send_seconds = Histogram(
            "messenger_send_seconds", "Time to store and publish a send", registry=self.registry
        )
