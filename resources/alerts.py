"""Alerts: where a failure gets a person's attention (a no-op by default).

Set ``webhook_url`` (or ``RECSYS_ALERT_WEBHOOK``) to POST a JSON payload
``{"text": ..., "run_id": ..., "job": ...}`` to Slack/Teams/PagerDuty-compatible
endpoints; without it alerts are only logged (they are always recorded in the
``run_failures`` table by the failure sensor).
"""

from __future__ import annotations

import json
import logging
import os
import urllib.request
from typing import Any

import dagster as dg
from pydantic import Field

log = logging.getLogger(__name__)


class AlertResource(dg.ConfigurableResource):
    webhook_url: str | None = Field(default_factory=lambda: os.environ.get("RECSYS_ALERT_WEBHOOK") or None)
    timeout_seconds: float = 5.0

    def send(self, text: str, **fields: Any) -> bool:
        """Send one alert; returns whether a webhook accepted it (never raises)."""
        payload = {"text": text, **fields}
        if not self.webhook_url:
            log.warning("alert (no webhook configured): %s", text)
            return False
        request = urllib.request.Request(
            self.webhook_url, data=json.dumps(payload, default=str).encode(), headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:
                return 200 <= response.status < 300
        except OSError as exc:
            log.error("alert webhook %s failed: %s", self.webhook_url, exc)
            return False
