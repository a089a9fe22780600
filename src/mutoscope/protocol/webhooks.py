"""Webhook endpoints API (OpenAI's WebhookEndpoint shapes, `client.webhooks.*` in the SDK)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from mutoscope.protocol.base import OpenAIBaseModel


class CreateWebhookEndpoint(OpenAIBaseModel):
    name: str = Field(min_length=1, max_length=200)
    url: str = Field(min_length=1, max_length=2048)
    event_types: list[str]


class UpdateWebhookEndpoint(OpenAIBaseModel):
    name: str | None = Field(default=None, max_length=200)
    url: str | None = Field(default=None, max_length=2048)
    event_types: list[str] | None = None


class TestWebhookEndpoint(OpenAIBaseModel):
    event_type: str


class WebhookEndpointObject(BaseModel):
    id: str
    object: Literal["webhook_endpoint"] = "webhook_endpoint"
    created_at: int
    updated_at: int | None
    event_types: list[str]
    name: str
    url: str
    signing_secret_hint: str | None
    # Only when created or rotated.
    signing_secret: str | None = None


class WebhookEndpointList(BaseModel):
    object: Literal["list"] = "list"
    data: list[WebhookEndpointObject]
    first_id: str | None
    last_id: str | None
    has_more: bool = False


class DeliveryAttempt(BaseModel):
    at: float
    status: int | None  # the receiver's HTTP status; None when no answer came (why is not told)
    ok: bool
    duration_ms: int | None = None


class WebhookDeliveryObject(BaseModel):
    """One event sent (or being sent) to an endpoint, with every attempt at it."""

    id: str
    object: Literal["webhook_endpoint.delivery"] = "webhook_endpoint.delivery"
    event_type: str
    created_at: float | None
    state: Literal["pending", "retrying", "delivered", "failed"]
    attempts: int
    delivered_at: float | None
    next_attempt_at: float | None
    tries: list[DeliveryAttempt]


class WebhookDeliveryList(BaseModel):
    object: Literal["list"] = "list"
    data: list[WebhookDeliveryObject]
    has_more: bool = False


class DeletedWebhookEndpoint(BaseModel):
    id: str
    object: Literal["webhook_endpoint.deleted"] = "webhook_endpoint.deleted"
    deleted: bool = True


class WebhookTestResult(BaseModel):
    object: Literal["webhook_endpoint.test"] = "webhook_endpoint.test"
    webhook_endpoint_id: str
    event_type: str
    status_code: int
    success: Literal[True] = True
