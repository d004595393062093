"""Commands of the event path: `serve`, `catch-up`, `events` and `notifications`."""

from __future__ import annotations

import argparse
import logging
from datetime import datetime, timezone

from halo_stripe_pipeline.config import database_url

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def register(subparsers: argparse._SubParsersAction) -> None:
    serve = subparsers.add_parser(
        "serve",
        help="run the webhook receiver (and the routes other parts mount)",
        description="Serve POST /api/integrations/stripe/webhook and /health with uvicorn.",
    )
    serve.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to listen on (default {DEFAULT_HOST})",
    )
    serve.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"TCP port (default {DEFAULT_PORT})",
    )
    serve.add_argument(
        "--workers", type=int, default=1, help="uvicorn worker processes (default 1)"
    )
    serve.set_defaults(handler=run_serve)

    catch_up = subparsers.add_parser(
        "catch-up",
        help="store and apply the Stripe events the receiver missed",
        description=(
            "Read GET /v1/events from an hour before the newest applied event (or --since), "
            "store the events not yet stored, then apply them in a Dagster run."
        ),
    )
    catch_up.add_argument(
        "--account", help="Stripe account id (default: every account with settings)"
    )
    catch_up.add_argument(
        "--since", type=parse_instant, help="start instant, ISO 8601 or Unix seconds"
    )
    catch_up.add_argument(
        "--no-apply",
        action="store_true",
        help="store the events but leave them pending",
    )
    catch_up.set_defaults(handler=run_catch_up)

    events = subparsers.add_parser(
        "events", help="inspect or apply stored webhook events"
    )
    events_commands = events.add_subparsers(
        dest="events_command", required=True, metavar="ACTION"
    )
    status = events_commands.add_parser("status", help="count stored events by status")
    status.set_defaults(handler=run_events_status)
    apply = events_commands.add_parser(
        "apply", help="apply pending events now, in a Dagster run"
    )
    apply.add_argument(
        "--no-marts",
        action="store_true",
        help="do not rebuild the marts after applying",
    )
    apply.set_defaults(handler=run_events_apply)
    retry = events_commands.add_parser(
        "retry", help="make events that failed too often pending again"
    )
    retry.set_defaults(handler=run_events_retry)

    notifications = subparsers.add_parser(
        "notifications",
        help="switch Slack notifications of Stripe events and post the outbox",
    )
    actions = notifications.add_subparsers(
        dest="notifications_command", required=True, metavar="ACTION"
    )
    for name, help_text in (
        ("enable", "post Slack messages for Stripe events (type stripe_event)"),
        ("disable", "stop queueing Slack messages for Stripe events"),
        ("status", "show the switch, the Slack configuration and the outbox counts"),
        ("send", "post the queued messages that are due now"),
    ):
        action = actions.add_parser(name, help=help_text)
        action.set_defaults(handler=run_notifications, notifications_action=name)


def parse_instant(text: str) -> datetime:
    """Parse `--since`: Unix seconds or an ISO 8601 time (UTC when no offset)."""
    value = text.strip()
    if value.isdigit():
        return datetime.fromtimestamp(int(value), tz=timezone.utc)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid instant `{text}`: expected ISO 8601 (2026-01-31T00:00:00Z) or Unix seconds"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from halo_stripe_pipeline.cli import CommandError

    if args.workers < 1:
        raise CommandError(f"--workers {args.workers} is invalid: expected 1 or more")
    # Resolve (and, when embedded, start) the warehouse before forking workers.
    import os

    os.environ["HALO_DATABASE_URL"] = database_url()
    log.info(
        "serving the receiver on http://%s:%d with %d workers",
        args.host,
        args.port,
        args.workers,
    )
    uvicorn.run(
        "webhook_receiver.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        access_log=False,
        log_level="info",
    )
    return 0


def run_apply_job(refresh_marts: bool = True) -> dict:
    """Run `apply_stripe_events` in this process; return the apply op's counts."""
    import dagster as dg

    from halo_stripe_pipeline.cli import CommandError
    from halo_stripe_pipeline.events.definitions import (
        ApplyEventsConfig,
        apply_stripe_events_job,
    )
    from halo_stripe_pipeline.instance import get_instance

    result = apply_stripe_events_job.execute_in_process(
        instance=get_instance(),
        run_config=dg.RunConfig(
            ops={"apply_events": ApplyEventsConfig(refresh_marts=refresh_marts)}
        ),
        raise_on_error=False,
    )
    if not result.success:
        raise CommandError(
            f"the apply run {result.run_id} failed; see `dagster` logs for the error"
        )
    return result.output_for_node("apply_events")


def run_catch_up(args: argparse.Namespace) -> int:
    from halo_stripe_pipeline.events.accounts import AccountResolver
    from halo_stripe_pipeline.events.catchup import catch_up
    from halo_stripe_pipeline.warehouse import connect, ensure_schema

    with connect(database_url()) as conn:
        ensure_schema(conn)
        report = catch_up(
            conn, AccountResolver(conn), account_id=args.account, since=args.since
        )
    for account in report.accounts:
        print(
            f"{account.account_id}: {account.listed} events listed since "
            f"{account.since.isoformat()}, {account.stored} missing and stored"
        )
    if args.no_apply:
        print("events left pending (--no-apply)")
        return 0
    summary = run_apply_job()
    print(
        f"applied {summary['events_applied']} events, {summary['objects_changed']} rows changed"
        + (f", {summary['events_failed']} failed" if summary["events_failed"] else "")
    )
    return 0


def run_events_status(args: argparse.Namespace) -> int:
    from halo_stripe_pipeline.events.apply import count_held_by_ingest_switch
    from halo_stripe_pipeline.warehouse import connect, ensure_schema

    with connect(database_url()) as conn:
        ensure_schema(conn)
        rows = conn.execute(
            "select status, count(*), max(received_at) from stripe_raw.webhook_events"
            " group by status order by status"
        ).fetchall()
        held = count_held_by_ingest_switch(conn)
    if not rows:
        print("no events stored")
    for status, count, last in rows:
        print(
            f"{status:<11} {count:>9}  last received {last.isoformat(timespec='seconds')}"
        )
    if held:
        # NOTE: counts events that name their account; platform events stored
        # without one are not attributed here.
        print(
            f"{held} pending events wait because ingest is off for their account;"
            " `halo-stripe settings set ingest_enabled true` applies them"
        )
    return 0


def run_events_apply(args: argparse.Namespace) -> int:
    summary = run_apply_job(refresh_marts=not args.no_marts)
    print(
        f"applied {summary['events_applied']} events ({summary['events_superseded']} superseded, "
        f"{summary['events_failed']} failed), {summary['objects_changed']} rows changed"
    )
    return 0


def run_events_retry(args: argparse.Namespace) -> int:
    from halo_stripe_pipeline.warehouse import connect

    with connect(database_url(), autocommit=True) as conn:
        cursor = conn.execute(
            "update stripe_raw.webhook_events set status = 'pending', attempts = 0"
            " where status = 'failed'"
        )
    print(f"{cursor.rowcount} failed events are pending again")
    return 0


def run_notifications(args: argparse.Namespace) -> int:
    from halo_stripe_pipeline.notify.outbox import is_enabled, send_pending, set_enabled
    from halo_stripe_pipeline.notify.slack import slack_configured
    from halo_stripe_pipeline.warehouse import connect, ensure_schema

    action = args.notifications_action
    with connect(database_url(), autocommit=True) as conn:
        ensure_schema(conn)
        if action in ("enable", "disable"):
            set_enabled(conn, action == "enable")
            print(f"stripe_event notifications {action}d")
            if action == "enable" and not slack_configured():
                print(
                    "Slack is not configured: set SLACK_WEBHOOK_URL, or SLACK_BOT_TOKEN "
                    "and SLACK_CHANNEL, where the Dagster runs execute"
                )
            return 0
        if action == "send":
            report = send_pending(conn)
            print(
                f"{report.sent} sent, {report.failed} failed, {report.pending} still queued"
            )
            return 0 if not report.failed else 1
        counts = dict(
            conn.execute(
                "select status, count(*) from halo.slack_outbox group by status"
            ).fetchall()
        )
        print(f"stripe_event: {'enabled' if is_enabled(conn) else 'disabled'}")
        print(f"slack: {'configured' if slack_configured() else 'not configured'}")
        print(
            f"outbox: {counts.get('pending', 0)} pending, {counts.get('sent', 0)} sent, "
            f"{counts.get('failed', 0)} failed"
        )
    return 0
