"""`POST /callbacks/<channel>`: providers' delivery receipts, applied to the outbox.

The channel registered under that name parses the request (`parse_callback`): it checks
its own credential (Notify: the bearer token NOTIFY_CALLBACK_TOKEN; unset turns Notify's
callbacks off) and returns provider-neutral receipts, each recorded idempotently, since
providers retry (`nudge_app.delivery.receipts.record_receipt`). Registered at
`/callbacks`, CSRF-exempt: the channel's credential is the check. The request's boundary
commits.
"""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, jsonify, request

from nudge_app.delivery.channels import CallbackRejected, ChannelConfigError, named
from nudge_app.delivery.receipts import record_receipt

log = logging.getLogger(__name__)

bp = Blueprint("callbacks", __name__)


@bp.post("/<name>")
def callback(name: str):
    """A provider's delivery callback, parsed by the channel registered as `name`."""
    try:
        channel = named(current_app._get_current_object(), name)
        receipts = channel.parse_callback(request)
    except ChannelConfigError:
        return jsonify(error="not_configured", message=f"no {name[:40]} channel is set up"), 404
    except CallbackRejected as exc:
        return jsonify(error=exc.error, message=exc.message), exc.status
    outcomes = [record_receipt(r) for r in receipts]
    if "unknown reference" in outcomes:
        log.info("%s receipt for an unknown message ignored", channel.name)
    if len(outcomes) == 1:
        return jsonify(result=outcomes[0]), 200
    return jsonify(results=outcomes), 200
