"""Jira webhook deliveries: the signature check and what each event asks for.

Jira signs a webhook registered with a secret: ``X-Hub-Signature: sha256=<hex>``, the
HMAC-SHA256 of the raw body keyed by the secret. ``X-Atlassian-Webhook-Identifier`` is the
same on every retry of one delivery (the idempotency key). Issue events carry the issue
but not its comments, so every event becomes "fetch this issue again" (its current state,
at processing time); only ``jira:issue_deleted`` deletes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
from dataclasses import dataclass
from typing import Any, Literal

from agnes_sync.connector import (
    WebhookDelivery,
    WebhookNotConfigured,
    WebhookPayloadInvalid,
    WebhookReceipt,
    WebhookSignatureInvalid,
)
from connectors.jira.options import JiraOptions
from connectors.jira.rows import obj, project_of, valid_id, valid_key

SIGNATURE_HEADER = "x-hub-signature"
DELIVERY_HEADER = "x-atlassian-webhook-identifier"
ISSUE_EVENTS = frozenset({"jira:issue_created", "jira:issue_updated"})
COMMENT_EVENTS = frozenset({"comment_created", "comment_updated", "comment_deleted"})
WORKLOG_EVENTS = frozenset({"worklog_created", "worklog_updated", "worklog_deleted"})
LINK_EVENTS = frozenset({"issuelink_created", "issuelink_deleted"})
DELETED = "jira:issue_deleted"

logger = logging.getLogger("agnes.connectors.jira")


@dataclass(frozen=True)
class IssueWork:
    """Fetch issue ``key`` (or ``issue_id``) again, or tombstone it. A deletion keeps the
    issue as the event carried it (JSON), for an issue the store never held."""

    action: Literal["upsert", "delete"]
    key: str | None
    issue_id: str | None
    payload: str | None = None

    @property
    def ref(self) -> str:
        return self.key or self.issue_id or ""


def sign(body: bytes, secret: str) -> str:
    """The ``X-Hub-Signature`` value Jira sends for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(source: str, options: JiraOptions, delivery: WebhookDelivery) -> None:
    env = options.webhook_secret_env
    secret = os.environ.get(env, "") if env else ""
    if not secret:
        # Who sends this need not be anyone we know: the variable's name is the
        # operator's to read (in the log), not the caller's.
        where = f"${env} is empty or unset" if env else "it has no webhook_secret_env option"
        logger.warning("source %s cannot check webhook signatures: %s", source, where)
        raise WebhookNotConfigured(
            f"Source '{source}' cannot check webhook signatures: no secret is configured "
            "on the server.",
            hint="The server's log says what to set (docs/connectors/jira.md: webhooks).",
        )
    given = delivery.headers.get(SIGNATURE_HEADER, "").strip().lower()
    if not given.startswith("sha256="):
        raise WebhookSignatureInvalid(
            "The delivery has no X-Hub-Signature: sha256=<hex> header.",
            hint="Register the webhook in Jira with a secret.",
        )
    if not hmac.compare_digest(sign(delivery.body, secret).encode(), given.encode()):
        raise WebhookSignatureInvalid(
            "The X-Hub-Signature does not match the body.",
            hint="The secret in Jira's webhook and in the source's environment variable differ.",
        )


def delivery_id(delivery: WebhookDelivery) -> str | None:
    value = delivery.headers.get(DELIVERY_HEADER, "").strip()
    if 0 < len(value) <= 200 and value.isprintable() and value.isascii():
        return value
    return None


def receipt(source: str, options: JiraOptions, delivery: WebhookDelivery) -> WebhookReceipt:
    """Verify ``delivery`` and turn it into work items."""
    verify(source, options, delivery)
    ident = delivery_id(delivery)
    try:
        body = json.loads(delivery.body)
    except (UnicodeDecodeError, ValueError):
        raise WebhookPayloadInvalid("The delivery's body is not JSON.") from None
    except RecursionError:
        raise WebhookPayloadInvalid("The delivery's body is nested too deeply.") from None
    if not isinstance(body, dict):
        raise WebhookPayloadInvalid("The delivery's body is not a JSON object.")
    event = str(body.get("webhookEvent", ""))[:100]
    if event in ISSUE_EVENTS or event in COMMENT_EVENTS:
        key, issue_id = _issue_ref(body.get("issue"), event)
        work = [IssueWork("upsert", key, issue_id)]
    elif event == DELETED:
        key, issue_id = _issue_ref(body.get("issue"), event)
        payload = (
            json.dumps(body["issue"], sort_keys=True) if isinstance(body["issue"], dict) else None
        )
        work = [IssueWork("delete", key, issue_id, payload)]
    elif event in WORKLOG_EVENTS:
        worklog = obj(body.get("worklog"))
        work = [IssueWork("upsert", None, _required_id(worklog.get("issueId"), event))]
    elif event in LINK_EVENTS:
        link = obj(body.get("issueLink"))
        work = [
            IssueWork("upsert", None, _required_id(link.get(side), event))
            for side in ("sourceIssueId", "destinationIssueId")
        ]
    else:
        return WebhookReceipt(ident, (), f"event '{event}' is not used by the jira connector")
    kept = tuple(w for w in work if _in_projects(w, options))
    note = "" if kept else "the issue is in a project this source does not keep"
    return WebhookReceipt(ident, kept, note)


def _issue_ref(issue: Any, event: str) -> tuple[str | None, str | None]:
    if not isinstance(issue, dict):
        raise WebhookPayloadInvalid(f"The {event} delivery carries no issue.")
    raw_key, raw_id = issue.get("key"), issue.get("id")
    key = valid_key(raw_key)
    if raw_key is not None and key is None:
        raise WebhookPayloadInvalid(
            f"The {event} delivery names issue key {str(raw_key)[:40]!r}, which is not a Jira "
            "issue key (PROJ-123)."
        )
    issue_id = valid_id(raw_id) if raw_id is not None else None
    if key is None and issue_id is None:
        raise WebhookPayloadInvalid(f"The {event} delivery's issue has no key or id.")
    return key, issue_id


def _required_id(value: Any, event: str) -> str:
    found = valid_id(value)
    if found is None:
        raise WebhookPayloadInvalid(f"The {event} delivery names no valid issue id.")
    return found


def _in_projects(work: IssueWork, options: JiraOptions) -> bool:
    if not options.projects or work.key is None:
        return True  # an id alone: the project is checked once the issue is fetched
    return project_of(work.key) in options.projects
