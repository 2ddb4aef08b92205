"""Posting an alert to an incoming webhook (Slack's format, `{"text": ...}`, which Teams and most chat tools
accept too). The webhook URL is a secret: no error, log line or event ever contains it."""

from __future__ import annotations

import requests


class AlertDeliveryError(RuntimeError):
    """The webhook did not take the alert; the message says how, never where."""


def post_alert(webhook_url: str, text: str, timeout: float = 10.0) -> None:
    try:
        response = requests.post(webhook_url, json={"text": text}, timeout=timeout)
    except requests.RequestException as exc:
        raise AlertDeliveryError(f"the alert webhook could not be reached ({type(exc).__name__})") from None
    if response.status_code >= 300:
        raise AlertDeliveryError(f"the alert webhook answered HTTP {response.status_code}")
