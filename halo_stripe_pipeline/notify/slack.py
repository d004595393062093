"""The Slack client: configuration, posting one message, and retry delays.

Configuration, from the environment:
- `SLACK_WEBHOOK_URL`: an incoming-webhook URL (posts to its own channel), or
- `SLACK_BOT_TOKEN` and `SLACK_CHANNEL`: a bot token and the channel id or
  name for `chat.postMessage`. `SLACK_API_BASE_URL` points the Web API client
  at another server (tests use a local one).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import timedelta

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.webhook import WebhookClient

log = logging.getLogger(__name__)

# A message is given up after this many failed posts. With the doubling
# delay capped at an hour, that is about a day of Slack being unreachable.
MAX_ATTEMPTS = 30
BASE_RETRY_DELAY = timedelta(seconds=10)
MAX_RETRY_DELAY = timedelta(hours=1)
TIMEOUT_SECONDS = 10


class SlackPostError(RuntimeError):
    """Slack did not accept a message.

    `transient` is true for an outage (no connection, HTTP 5xx, rate limit),
    when the messages behind this one would fail too. `retry_after` is the
    wait Slack requested, if any.
    """

    def __init__(
        self, message: str, *, transient: bool = True, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.transient = transient
        self.retry_after = retry_after


def _is_transient_status(status: int) -> bool:
    return status == 429 or status >= 500


def slack_configured() -> bool:
    """True when a webhook URL, or a bot token with a channel, is set."""
    if os.environ.get("SLACK_WEBHOOK_URL", "").strip():
        return True
    return bool(
        os.environ.get("SLACK_BOT_TOKEN", "").strip()
        and os.environ.get("SLACK_CHANNEL", "").strip()
    )


Poster = Callable[[str], None]


def _retry_after(headers: object) -> float | None:
    if not isinstance(headers, dict):
        return None
    for key, value in headers.items():
        if key.lower() == "retry-after":
            values = value if isinstance(value, list) else [value]
            try:
                return float(values[0])
            except (TypeError, ValueError, IndexError):
                return None
    return None


def webhook_poster(url: str) -> Poster:
    client = WebhookClient(url, timeout=TIMEOUT_SECONDS)

    def post(text: str) -> None:
        try:
            response = client.send(text=text)
        except (OSError, SlackClientError) as error:
            raise SlackPostError(f"incoming webhook request failed: {error}") from error
        if response.status_code != 200:
            raise SlackPostError(
                f"incoming webhook returned HTTP {response.status_code}: {response.body[:200]}",
                transient=_is_transient_status(response.status_code),
                retry_after=_retry_after(response.headers),
            )

    return post


def bot_poster(token: str, channel: str, base_url: str | None = None) -> Poster:
    client = WebClient(
        token=token, base_url=base_url or WebClient.BASE_URL, timeout=TIMEOUT_SECONDS
    )

    def post(text: str) -> None:
        try:
            client.chat_postMessage(channel=channel, text=text)
        except SlackApiError as error:
            raise SlackPostError(
                f"chat.postMessage failed: {error.response.get('error')}",
                transient=_is_transient_status(error.response.status_code)
                or error.response.get("error") == "ratelimited",
                retry_after=_retry_after(error.response.headers),
            ) from error
        except (OSError, SlackClientError) as error:
            raise SlackPostError(f"chat.postMessage request failed: {error}") from error

    return post


def poster_from_env() -> Poster | None:
    """Return the configured poster, or None when Slack is not configured."""
    url = os.environ.get("SLACK_WEBHOOK_URL", "").strip()
    if url:
        return webhook_poster(url)
    token = os.environ.get("SLACK_BOT_TOKEN", "").strip()
    channel = os.environ.get("SLACK_CHANNEL", "").strip()
    if token and channel:
        base_url = os.environ.get("SLACK_API_BASE_URL", "").strip() or None
        if base_url and not base_url.endswith("/"):
            base_url += "/"
        return bot_poster(token, channel, base_url)
    return None


def retry_delay(attempts: int, retry_after: float | None = None) -> timedelta:
    """Return the wait before the next try after `attempts` failures."""
    if retry_after is not None and retry_after > 0:
        return min(timedelta(seconds=retry_after), MAX_RETRY_DELAY)
    return min(BASE_RETRY_DELAY * (2 ** max(attempts - 1, 0)), MAX_RETRY_DELAY)
