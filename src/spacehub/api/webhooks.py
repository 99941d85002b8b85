"""Webhooks: /api/settings/webhooks[/{id}[/enable|disable|deliveries]] (the Hub's, plus SpaceHub's delivery log)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

from spacehub.api import responses as r
from spacehub.api import schemas
from spacehub.services import webhooks
from spacehub.web.deps import json_object, unit
from spacehub.web.openapi import answers, raw_answers

router = APIRouter()
PREFIX = "/api/settings/webhooks"


@router.get(PREFIX, **answers(list[r.WebhookInfo]))
def list_webhooks(request: Request) -> list[dict[str, Any]]:
    """Serves `HfApi.list_webhooks`: GET /api/settings/webhooks."""
    with unit(request) as (_, s, p):
        return webhooks.list_webhooks(s, p)


@router.post(PREFIX, openapi_extra=schemas.body(schemas.CreateWebhook), **answers(r.WebhookAnswer))
async def create_webhook(request: Request) -> dict[str, Any]:
    """Serves `HfApi.create_webhook`: POST /api/settings/webhooks {watched, domains, url, secret?}."""
    body = await json_object(request)

    def run() -> dict[str, Any]:
        with unit(request) as (ctx, s, p):
            return webhooks.create_webhook(ctx, s, p, body)

    return await run_in_threadpool(run)


@router.get(PREFIX + "/{webhook_id}", **answers(r.WebhookAnswer))
def get_webhook(request: Request, webhook_id: str) -> dict[str, Any]:
    """Serves `HfApi.get_webhook`: GET /api/settings/webhooks/{id}."""
    with unit(request) as (_, s, p):
        return webhooks.get_webhook(s, p, webhook_id)


@router.post(PREFIX + "/{webhook_id}", openapi_extra=schemas.body(schemas.UpdateWebhook), **answers(r.WebhookAnswer))
async def update_webhook(request: Request, webhook_id: str) -> dict[str, Any]:
    """Serves `HfApi.update_webhook`: POST /api/settings/webhooks/{id}."""
    body = await json_object(request)

    def run() -> dict[str, Any]:
        with unit(request) as (ctx, s, p):
            return webhooks.update_webhook(ctx, s, p, webhook_id, body)

    return await run_in_threadpool(run)


@router.post(PREFIX + "/{webhook_id}/enable", **answers(r.WebhookAnswer))
def enable_webhook(request: Request, webhook_id: str) -> dict[str, Any]:
    """Serves `HfApi.enable_webhook`: POST /api/settings/webhooks/{id}/enable."""
    with unit(request) as (_, s, p):
        return webhooks.set_disabled(s, p, webhook_id, False)


@router.post(PREFIX + "/{webhook_id}/disable", **answers(r.WebhookAnswer))
def disable_webhook(request: Request, webhook_id: str) -> dict[str, Any]:
    """Serves `HfApi.disable_webhook`: POST /api/settings/webhooks/{id}/disable."""
    with unit(request) as (_, s, p):
        return webhooks.set_disabled(s, p, webhook_id, True)


@router.delete(PREFIX + "/{webhook_id}", **raw_answers("text/plain", {"const": "OK"}, "Deleted"))
def delete_webhook(request: Request, webhook_id: str) -> PlainTextResponse:
    """Serves `HfApi.delete_webhook`: DELETE /api/settings/webhooks/{id}."""
    with unit(request) as (_, s, p):
        webhooks.delete_webhook(s, p, webhook_id)
    return PlainTextResponse("OK")


@router.get(PREFIX + "/{webhook_id}/deliveries", **answers(list[r.WebhookDelivery]))
def list_webhook_deliveries(request: Request, webhook_id: str) -> list[dict[str, Any]]:
    """SpaceHub's delivery log (the Hub's "activity" tab): GET /api/settings/webhooks/{id}/deliveries, newest first."""
    with unit(request) as (_, s, p):
        return webhooks.list_deliveries(s, p, webhook_id)


@router.post(PREFIX + "/{webhook_id}/deliveries/{delivery_id}/replay", **answers(r.WebhookDelivery))
def replay_webhook_delivery(request: Request, webhook_id: str, delivery_id: str) -> dict[str, Any]:
    """SpaceHub's "Replay" of the delivery log: the payload again, as a new delivery to the webhook's current URL."""
    with unit(request) as (ctx, s, p):
        return webhooks.replay_delivery(ctx, s, p, webhook_id, delivery_id)
