"""`halo-stripe billing ...`: submit, decide and execute billing requests."""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from halo_stripe_pipeline.billing import policy, queue, tokens
from halo_stripe_pipeline.billing.execution import Executor
from halo_stripe_pipeline.billing.models import (
    APPROVED,
    EXECUTING,
    FAILED,
    REQUEST_TYPES,
    STATUSES,
    BillingError,
    BillingRequest,
    NotFoundError,
    Submission,
)
from halo_stripe_pipeline.money import format_minor

log = logging.getLogger(__name__)


@contextmanager
def _warehouse() -> Iterator[psycopg.Connection]:
    from halo_stripe_pipeline.config import database_url
    from halo_stripe_pipeline.warehouse import connect, ensure_schema

    with connect(database_url(), autocommit=True) as conn:
        ensure_schema(conn)
        yield conn


def _command_error(error: BillingError) -> Exception:
    from halo_stripe_pipeline.cli import CommandError

    return CommandError(str(error))


def _amount_text(request: BillingRequest) -> str:
    if request.amount_minor is None or not request.currency:
        return ""
    return format_minor(request.amount_minor, request.currency)


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str, sort_keys=True))


def _submit(args: argparse.Namespace) -> int:
    submission = Submission(
        request_type=args.type,
        customer_id=args.customer,
        reason=args.reason,
        summary=args.summary,
        requested_by=args.requested_by,
        account_id=args.account,
        company_id=args.company,
        charge_id=args.charge,
        subscription_id=args.subscription,
        amount=args.amount,
        currency=args.currency,
        days=args.days,
        refund_latest_payment=args.refund_latest_payment,
    )
    with _warehouse() as conn:
        try:
            request = queue.submit(conn, submission)
        except BillingError as error:
            raise _command_error(error) from None
    if args.json:
        _print_json(request.to_json())
    else:
        print(f"{request.id} {request.status}")
    return 0


def _list(args: argparse.Namespace) -> int:
    with _warehouse() as conn:
        try:
            requests = queue.list_requests(
                conn, status=args.status, account_id=args.account, limit=args.limit
            )
        except BillingError as error:
            raise _command_error(error) from None
    if args.json:
        _print_json([request.to_json() for request in requests])
        return 0
    print(
        f"{'id':>6}  {'status':<10} {'type':<21} {'account':<22} {'customer':<20} {'amount':>14}  requested_by"
    )
    for request in requests:
        print(
            f"{request.id:>6}  {request.status:<10} {request.request_type:<21} "
            f"{request.account_id:<22} {request.customer_id:<20} "
            f"{_amount_text(request):>14}  {request.requested_by}"
        )
    return 0


def _show(args: argparse.Namespace) -> int:
    with _warehouse() as conn:
        try:
            request = queue.get_request(conn, args.id, with_events=True)
        except BillingError as error:
            raise _command_error(error) from None
    data = request.to_json()
    data["events"] = [
        {**event, "created_at": event["created_at"].isoformat()}
        for event in request.events
    ]
    if args.json:
        _print_json(data)
        return 0
    for key in (
        "id",
        "status",
        "request_type",
        "account_id",
        "company_id",
        "customer_id",
        "charge_id",
        "subscription_id",
        "days",
        "reason",
        "summary",
        "requested_by",
        "assigned_to",
        "is_auto_approved",
        "decided_by",
        "decision_note",
        "error",
        "execution_generation",
        "created_at",
        "decided_at",
        "executed_at",
    ):
        if data.get(key) is not None:
            print(f"{key}: {data[key]}")
    if request.amount_minor is not None:
        print(f"amount: {_amount_text(request)}")
    if request.result:
        print("result: " + json.dumps(request.result, sort_keys=True))
    print("events:")
    for event in data["events"]:
        note = f" ({event['note']})" if event.get("note") else ""
        print(
            f"  {event['created_at']} {event['from_status'] or '-'} -> {event['to_status']} by {event['actor']}{note}"
        )
    return 0


def _approve(args: argparse.Namespace) -> int:
    with _warehouse() as conn:
        try:
            request = queue.approve(conn, args.id, by=args.by, note=args.note)
        except BillingError as error:
            raise _command_error(error) from None
    print(f"{request.id} {request.status}")
    return 0


def _reject(args: argparse.Namespace) -> int:
    with _warehouse() as conn:
        try:
            request = queue.reject(conn, args.id, by=args.by, note=args.note)
        except BillingError as error:
            raise _command_error(error) from None
    print(f"{request.id} {request.status}")
    return 0


def _execute(args: argparse.Namespace) -> int:
    if args.retry and not args.ids:
        raise _command_error(
            BillingError("--retry needs the ids of the failed requests")
        )
    if args.retry and not args.by:
        raise _command_error(BillingError("--retry needs --by: name who retries"))
    with _warehouse() as conn:
        try:
            for request_id in args.ids if args.retry else []:
                queue.retry(conn, request_id, by=args.by)
            _check_runnable(conn, args.ids)
            handled = Executor(conn).run(args.ids or None)
        except BillingError as error:
            raise _command_error(error) from None
    for request in handled:
        detail = f" ({request.error})" if request.error else ""
        print(f"{request.id} {request.status}{detail}")
    if not handled:
        print("no approved requests to execute")
    return 1 if any(request.status == "failed" for request in handled) else 0


def _check_runnable(conn: psycopg.Connection, request_ids: list[int]) -> None:
    """Raise `BillingError` naming each given id that is unknown or not approved."""
    problems = []
    for request_id in request_ids:
        try:
            status = queue.get_request(conn, request_id).status
        except NotFoundError as error:
            problems.append(str(error))
            continue
        if status in (APPROVED, EXECUTING):
            continue
        hint = ": retry it with --retry --by NAME" if status == FAILED else ""
        problems.append(
            f"billing request {request_id} is {status}, so it cannot run{hint}"
        )
    if problems:
        raise BillingError("; ".join(problems))


def _agents(args: argparse.Namespace) -> int:
    with _warehouse() as conn:
        if args.agents_command == "list":
            for agent in policy.list_agents(conn):
                state = "enabled" if agent.billing_enabled else "disabled"
                print(
                    f"{agent.agent_id}\t{state}\t{agent.updated_by or ''}\t{agent.updated_at.isoformat()}"
                )
            return 0
        try:
            agent = policy.set_agent_enabled(
                conn, args.agent, args.agents_command == "enable", changed_by=args.by
            )
        except BillingError as error:
            raise _command_error(error) from None
    print(f"{agent.agent_id} {'enabled' if agent.billing_enabled else 'disabled'}")
    return 0


def _settings(args: argparse.Namespace) -> int:
    with _warehouse() as conn:
        if args.settings_command == "set":
            changes: dict[str, Any] = {}
            if args.default_action_agent is not None:
                changes["default_action_agent"] = args.default_action_agent
            if args.default_approver is not None:
                changes["default_approver"] = args.default_approver
            if not changes:
                raise _command_error(
                    BillingError(
                        "nothing to set: pass --default-action-agent or --default-approver"
                    )
                )
            settings = policy.update_account_settings(conn, args.account, **changes)
        else:
            settings = policy.get_account_settings(conn, args.account)
        thresholds = policy.list_thresholds(conn, args.account)
    print(f"account_id: {settings.account_id}")
    print(f"default_action_agent: {settings.default_action_agent or '(none)'}")
    print(f"default_approver: {settings.default_approver or '(none)'}")
    for threshold in thresholds:
        print(
            f"auto-approve {threshold.request_type} below: {_threshold_text(threshold)}"
        )
    return 0


def _threshold_text(threshold: policy.Threshold) -> str:
    if threshold.unit == policy.DAYS_UNIT:
        return f"{threshold.below_amount} days"
    return format_minor(threshold.below_amount, threshold.unit)


def _thresholds(args: argparse.Namespace) -> int:
    with _warehouse() as conn:
        try:
            if args.thresholds_command == "set":
                unit, amount = policy.parse_threshold(
                    args.type, args.below, args.currency
                )
                policy.set_threshold(conn, args.account, args.type, unit, amount)
            elif args.thresholds_command == "remove":
                unit = (
                    policy.DAYS_UNIT
                    if args.type == "extend_trial"
                    else (args.currency or "").lower()
                )
                if not policy.remove_threshold(conn, args.account, args.type, unit):
                    raise BillingError(
                        f"no {args.type} threshold in `{unit}` for account `{args.account}`"
                    )
        except BillingError as error:
            raise _command_error(error) from None
        for threshold in policy.list_thresholds(conn, getattr(args, "account", None)):
            print(
                f"{threshold.account_id}\t{threshold.request_type}\tbelow {_threshold_text(threshold)}"
            )
    return 0


def _tokens(args: argparse.Namespace) -> int:
    with _warehouse() as conn:
        try:
            if args.tokens_command == "create":
                token = tokens.create_token(
                    conn, name=args.name, role=args.role, account_id=args.account
                )
                print(token)
                return 0
            if args.tokens_command == "revoke":
                count = tokens.revoke_token(conn, args.fingerprint)
                if count == 0:
                    raise BillingError(
                        f"no active token with fingerprint `{args.fingerprint}`"
                    )
                print(f"revoked {count} token(s)")
                return 0
        except BillingError as error:
            raise _command_error(error) from None
        for info in tokens.list_tokens(conn):
            state = (
                f"revoked {info.revoked_at.isoformat()}"
                if info.revoked_at
                else "active"
            )
            print(
                f"{info.fingerprint}\t{info.role}\t{info.name}\t{info.account_id or '*'}\t{state}"
            )
    return 0


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid number `{text}`: expected a whole number"
        ) from None


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    billing = subparsers.add_parser(
        "billing", help="billing requests: submit, approve, execute"
    )
    commands = billing.add_subparsers(
        dest="billing_command", required=True, metavar="COMMAND"
    )
    _register_requests(commands)
    _register_policy(commands)


def _register_requests(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    submit = commands.add_parser("submit", help="submit a billing request for approval")
    submit.add_argument(
        "--type", required=True, choices=REQUEST_TYPES, help="what to do in Stripe"
    )
    submit.add_argument(
        "--customer", required=True, help="Stripe customer id (cus_...)"
    )
    submit.add_argument(
        "--account", help="Stripe account id; needed when the customer is in several"
    )
    submit.add_argument(
        "--company", help="Halo company id; found from the customer when omitted"
    )
    submit.add_argument("--charge", help="charge to refund (ch_...)")
    submit.add_argument(
        "--subscription", help="subscription to cancel or extend (sub_...)"
    )
    submit.add_argument(
        "--refund-latest-payment",
        action="store_true",
        help="with cancel_immediately: also refund the subscription's latest payment",
    )
    submit.add_argument(
        "--amount",
        help="amount in major units, e.g. 12.50; a refund defaults to all that remains",
    )
    submit.add_argument(
        "--currency",
        help="ISO currency code, e.g. usd; a refund defaults to the charge's",
    )
    submit.add_argument("--days", type=_integer, help="trial extension in days (1-730)")
    submit.add_argument("--reason", required=True, help="why the customer asks")
    submit.add_argument("--summary", required=True, help="summary of the conversation")
    submit.add_argument(
        "--requested-by", required=True, help="agent id of the submitter"
    )
    submit.add_argument(
        "--json", action="store_true", help="print the whole request as JSON"
    )
    submit.set_defaults(handler=_submit)

    listing = commands.add_parser("list", help="list requests, newest first")
    listing.add_argument("--status", choices=STATUSES)
    listing.add_argument("--account")
    listing.add_argument("--limit", type=_integer, default=100)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=_list)

    show = commands.add_parser("show", help="show one request with its audit trail")
    show.add_argument("id", type=_integer)
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=_show)

    approve = commands.add_parser("approve", help="approve a pending request")
    approve.add_argument("id", type=_integer)
    approve.add_argument("--by", required=True, help="name of the approver")
    approve.add_argument("--note")
    approve.set_defaults(handler=_approve)

    reject = commands.add_parser("reject", help="reject a pending request")
    reject.add_argument("id", type=_integer)
    reject.add_argument("--by", required=True, help="name of the approver")
    reject.add_argument("--note", required=True, help="why the request is rejected")
    reject.set_defaults(handler=_reject)

    execute = commands.add_parser(
        "execute", help="run approved requests against Stripe (all, or the given ids)"
    )
    execute.add_argument("ids", nargs="*", type=_integer)
    execute.add_argument(
        "--retry",
        action="store_true",
        help="first send the given failed requests back to approved",
    )
    execute.add_argument("--by", help="who retries (with --retry)")
    execute.set_defaults(handler=_execute)


def _register_policy(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    agents = commands.add_parser(
        "agents", help="list or change which agents may submit requests"
    )
    agent_commands = agents.add_subparsers(
        dest="agents_command", required=True, metavar="COMMAND"
    )
    agent_commands.add_parser("list", help="list agents and whether billing is enabled")
    for name in ("enable", "disable"):
        sub = agent_commands.add_parser(
            name, help=f"{name} billing requests for an agent"
        )
        sub.add_argument("agent", help="agent id, as agents pass it in --requested-by")
        sub.add_argument("--by", default="cli", help="who makes the change (recorded)")
    agents.set_defaults(handler=_agents)

    settings = commands.add_parser(
        "settings", help="show or change an account's billing settings"
    )
    settings_commands = settings.add_subparsers(
        dest="settings_command", required=True, metavar="COMMAND"
    )
    show = settings_commands.add_parser("show")
    show.add_argument("account")
    change = settings_commands.add_parser("set")
    change.add_argument("account")
    change.add_argument(
        "--default-action-agent",
        help="agent that reviews billing requests; empty clears it",
    )
    change.add_argument(
        "--default-approver",
        help="approver new requests are assigned to; empty clears it",
    )
    settings.set_defaults(handler=_settings)

    thresholds = commands.add_parser(
        "thresholds", help="auto-approval thresholds per account and type"
    )
    threshold_commands = thresholds.add_subparsers(
        dest="thresholds_command", required=True, metavar="COMMAND"
    )
    listing = threshold_commands.add_parser("list")
    listing.add_argument("--account")
    change = threshold_commands.add_parser(
        "set", help="approve requests below an amount automatically"
    )
    change.add_argument("--account", required=True)
    change.add_argument(
        "--type", required=True, choices=("refund", "apply_credit", "extend_trial")
    )
    change.add_argument(
        "--below",
        required=True,
        help="major units (e.g. 20.00), or days for extend_trial",
    )
    change.add_argument("--currency", help="currency of --below (not for extend_trial)")
    remove = threshold_commands.add_parser("remove")
    remove.add_argument("--account", required=True)
    remove.add_argument(
        "--type", required=True, choices=("refund", "apply_credit", "extend_trial")
    )
    remove.add_argument("--currency")
    thresholds.set_defaults(handler=_thresholds)

    token_parser = commands.add_parser(
        "tokens", help="API tokens for agents and approvers"
    )
    token_commands = token_parser.add_subparsers(
        dest="tokens_command", required=True, metavar="COMMAND"
    )
    create = token_commands.add_parser(
        "create", help="create a token and print it once"
    )
    create.add_argument(
        "--name", required=True, help="agent id, or the approver's name"
    )
    create.add_argument("--role", required=True, choices=tokens.ROLES)
    create.add_argument(
        "--account", help="account an approver decides for (required for approvers)"
    )
    token_commands.add_parser("list", help="list tokens by fingerprint")
    revoke = token_commands.add_parser(
        "revoke", help="revoke a token by its fingerprint"
    )
    revoke.add_argument("fingerprint")
    token_parser.set_defaults(handler=_tokens)
