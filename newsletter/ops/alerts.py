"""Alerts to a person: one message to NEWSLETTER_ALERT_WEBHOOK_URL when a send run stops,
when an edition finishes with too many failed or unknown deliveries, and when the daemon
passes a send time without sending.

The body is `{"text": ...}`, what Slack's and Mattermost's incoming webhooks take (and
most chat tools' "Slack-compatible" ones). An alert that cannot be delivered is logged
and dropped: it never breaks or delays a send beyond its short timeout.
"""

from __future__ import annotations

import logging

from newsletter.settings import Settings

log = logging.getLogger(__name__)
TIMEOUT_SECONDS = 5.0


def alert(settings: Settings, text: str) -> bool:
    """Post `text` to the webhook, if one is set. True when it was accepted."""
    url = settings.alert_webhook_url
    if not url:
        return False
    import requests  # only when there is something to say (keeps the CLI's start fast)

    try:
        response = requests.post(url, json={"text": f"{settings.list_name}: {text}"},
                                 timeout=TIMEOUT_SECONDS)
        response.raise_for_status()
    except Exception as err:  # noqa: BLE001 - an alert must never break a send
        log.warning("alert not delivered to the webhook (%s): %s", type(err).__name__, text)
        return False
    log.info("alert sent: %s", text)
    return True


def failed_share_alert(settings: Settings, date: str, counts: dict[str, int]) -> str | None:
    """The alert text when failed + unknown deliveries are above the threshold, else None."""
    total = sum(counts.values())
    bad = counts.get("failed", 0) + counts.get("unknown", 0)
    if not total or 100.0 * bad / total <= settings.alert_failed_percent:
        return None
    return (f"edition {date} finished with {counts.get('failed', 0)} failed and "
            f"{counts.get('unknown', 0)} unknown of {total} deliveries "
            f"({100.0 * bad / total:.1f}%, above NEWSLETTER_ALERT_FAILED_PERCENT="
            f"{settings.alert_failed_percent:g}); `newsletter status --date {date}` shows them")
