"""Webhooks: each task's final state POSTed to its webhook URL, signed per Standard Webhooks, by a
delivery loop that every facade runs over the queue's outbox (`server.jobs.outbox`)."""

from __future__ import annotations

from server.api.webhooks.dispatcher import WebhookDispatcher, event_body, webhook_guard
from server.api.webhooks.signature import signature_headers

__all__ = ["WebhookDispatcher", "event_body", "signature_headers", "webhook_guard"]
