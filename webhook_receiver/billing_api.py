"""The billing API and the approval page of the receiver service.

JSON API (`Authorization: Bearer <token>`):

- `POST /api/billing/requests`: an agent submits a request (agents only).
- `GET /api/billing/requests/{id}`: status of a request. An agent can read
  the requests it submitted, and an approver those of its account.
- `GET /api/billing/requests?status=pending`: an approver's queue.
- `POST /api/billing/requests/{id}/approve` and `.../reject` with
  `{"note": "..."}`: approvers only, on their own account's requests.

A request outside the caller's reach gets 404, so its existence does not
leak. A valid token with the wrong role gets 403.

The page under `/billing/` signs an approver in with the same token, kept in
an HttpOnly, SameSite=Strict cookie; its forms also carry a token derived
from the cookie, so another site cannot post a decision.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs

import jinja2
import psycopg
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from halo_stripe_pipeline.billing import queue, tokens
from halo_stripe_pipeline.billing.context import load_billing_context
from halo_stripe_pipeline.billing.models import (
    PENDING,
    REQUEST_TYPES,
    BillingRequest,
    InvalidTransition,
    NotFoundError,
    Submission,
    ValidationError,
)
from halo_stripe_pipeline.money import format_minor
from halo_stripe_pipeline.warehouse import connect

log = logging.getLogger(__name__)

API_PREFIX = "/api/billing"
PAGE_PREFIX = "/billing"
SESSION_COOKIE = "halo_billing_session"
MAX_BODY_BYTES = 64 * 1024
SUBMISSION_FIELDS = (
    "type",
    "customer",
    "account",
    "company",
    "charge",
    "subscription",
    "amount",
    "amount_minor",
    "currency",
    "days",
    "reason",
    "summary",
    "refund_latest_payment",
)

_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)
T = TypeVar("T")


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _money(amount_minor: int | None, currency: str | None) -> str:
    if amount_minor is None or not currency:
        return ""
    return format_minor(amount_minor, currency)


_templates.filters["money"] = lambda value, currency: _money(value, currency)


async def _in_warehouse(request: Request, work: Callable[[psycopg.Connection], T]) -> T:
    """Run `work` with a warehouse connection in a worker thread."""

    def run() -> T:
        with connect(request.app.state.db_url, autocommit=True) as conn:
            # The page prints timestamps labelled UTC.
            conn.execute("set time zone 'UTC'")
            return work(conn)

    return await run_in_threadpool(run)


def _bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            401, "missing bearer token: send `Authorization: Bearer <token>`"
        )
    return token.strip()


def _owner(conn: psycopg.Connection, token: str) -> tokens.TokenOwner:
    owner = tokens.authenticate(conn, token)
    if owner is None:
        raise ApiError(401, "invalid or revoked token")
    return owner


def _visible_request(
    conn: psycopg.Connection, owner: tokens.TokenOwner, request_id: int
) -> BillingRequest:
    """Return the request if `owner` may see it; 404 otherwise."""
    try:
        billing_request = queue.get_request(conn, request_id, with_events=True)
    except NotFoundError:
        raise ApiError(404, f"billing request {request_id} not found") from None
    if owner.role == tokens.APPROVER and billing_request.account_id == owner.account_id:
        return billing_request
    if owner.role == tokens.AGENT and billing_request.requested_by == owner.name:
        if owner.account_id is None or owner.account_id == billing_request.account_id:
            return billing_request
    raise ApiError(404, f"billing request {request_id} not found")


def _require_approver(owner: tokens.TokenOwner) -> None:
    if owner.role != tokens.APPROVER:
        raise ApiError(
            403,
            f"a {owner.role} token cannot decide billing requests; use an approver token",
        )


def _request_json(billing_request: BillingRequest) -> dict[str, Any]:
    data = billing_request.to_json()
    data["events"] = [
        {**event, "created_at": event["created_at"].isoformat()}
        for event in billing_request.events
    ]
    data["amount"] = (
        _money(billing_request.amount_minor, billing_request.currency) or None
    )
    data.pop("execution_plan", None)
    return data


def _error_response(error: Exception) -> JSONResponse:
    """Map the errors a caller can fix to their status; anything else is re-raised."""
    if isinstance(error, ApiError):
        status = error.status
    elif isinstance(error, ValidationError):
        status = 422
    elif isinstance(error, InvalidTransition):
        status = 409
    elif isinstance(error, NotFoundError):
        status = 404
    else:
        raise error
    log.info("billing API request failed with %d: %s", status, error)
    return JSONResponse({"error": str(error)}, status_code=status)


async def _json_body(request: Request) -> dict[str, Any]:
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise ApiError(413, f"request body larger than {MAX_BODY_BYTES} bytes")
    if not body:
        return {}
    try:
        data = json.loads(body, parse_float=Decimal)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "invalid JSON body") from None
    if not isinstance(data, dict):
        raise ApiError(400, "invalid JSON body: expected an object")
    return data


def _text_field(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise ValidationError(f"invalid `{name}`: expected a string")
    if isinstance(value, Decimal):
        # A JSON number such as 1e1 parses to Decimal("1E+1"), whose str()
        # keeps the exponent that amount parsing rejects; "f" writes 10.
        return format(value, "f")
    return str(value)


def _int_field(data: dict[str, Any], name: str) -> int | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"invalid `{name}`: expected a whole number")
    return value


def _bool_field(data: dict[str, Any], name: str) -> bool:
    value = data.get(name, False)
    if not isinstance(value, bool):
        raise ValidationError(f"invalid `{name}`: expected true or false")
    return value


def submission_from_json(data: dict[str, Any], owner: tokens.TokenOwner) -> Submission:
    """Build a submission from an agent's JSON body; the submitter is the token's agent."""
    unknown = sorted(set(data) - set(SUBMISSION_FIELDS))
    if unknown:
        raise ValidationError(
            f"unknown field(s) {', '.join(unknown)}; expected {', '.join(SUBMISSION_FIELDS)}"
        )
    request_type = _text_field(data, "type") or ""
    if request_type not in REQUEST_TYPES:
        raise ValidationError(
            f"invalid `type` `{request_type}`: expected one of {', '.join(REQUEST_TYPES)}"
        )
    account_id = _text_field(data, "account") or owner.account_id
    if owner.account_id and account_id != owner.account_id:
        raise ApiError(
            403, f"this agent token may submit only for account `{owner.account_id}`"
        )
    return Submission(
        request_type=request_type,
        customer_id=_text_field(data, "customer") or "",
        reason=_text_field(data, "reason") or "",
        summary=_text_field(data, "summary") or "",
        requested_by=owner.name,
        account_id=account_id,
        company_id=_text_field(data, "company"),
        charge_id=_text_field(data, "charge"),
        subscription_id=_text_field(data, "subscription"),
        amount=_text_field(data, "amount"),
        amount_minor=_int_field(data, "amount_minor"),
        currency=_text_field(data, "currency"),
        days=_int_field(data, "days"),
        refund_latest_payment=_bool_field(data, "refund_latest_payment"),
    )


async def api_submit(request: Request) -> Response:
    try:
        token = _bearer_token(request)
        data = await _json_body(request)

        def work(conn: psycopg.Connection) -> BillingRequest:
            owner = _owner(conn, token)
            if owner.role != tokens.AGENT:
                raise ApiError(403, "only agent tokens submit billing requests")
            return queue.submit(conn, submission_from_json(data, owner))

        created = await _in_warehouse(request, work)
    except (ApiError, ValidationError) as error:
        return _error_response(error)
    return JSONResponse(_request_json(created), status_code=201)


async def api_show(request: Request) -> Response:
    request_id = request.path_params["request_id"]
    try:
        token = _bearer_token(request)
        found = await _in_warehouse(
            request,
            lambda conn: _visible_request(conn, _owner(conn, token), request_id),
        )
    except ApiError as error:
        return _error_response(error)
    return JSONResponse(_request_json(found))


async def api_list(request: Request) -> Response:
    status = request.query_params.get("status")
    try:
        token = _bearer_token(request)

        def work(conn: psycopg.Connection) -> list[BillingRequest]:
            owner = _owner(conn, token)
            if owner.role == tokens.APPROVER:
                return queue.list_requests(
                    conn, status=status, account_id=owner.account_id
                )
            return queue.list_requests(
                conn,
                status=status,
                account_id=owner.account_id,
                requested_by=owner.name,
            )

        found = await _in_warehouse(request, work)
    except (ApiError, ValidationError) as error:
        return _error_response(error)
    return JSONResponse({"requests": [_request_json(item) for item in found]})


def _decide(
    conn: psycopg.Connection,
    owner: tokens.TokenOwner,
    request_id: int,
    action: str,
    note: str | None,
) -> BillingRequest:
    _require_approver(owner)
    _visible_request(conn, owner, request_id)
    if action == "approve":
        return queue.approve(conn, request_id, by=owner.name, note=note)
    return queue.reject(conn, request_id, by=owner.name, note=note or "")


def _api_decision(action: str) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        request_id = request.path_params["request_id"]
        try:
            token = _bearer_token(request)
            data = await _json_body(request)
            note = _text_field(data, "note")
            decided = await _in_warehouse(
                request,
                lambda conn: _decide(
                    conn, _owner(conn, token), request_id, action, note
                ),
            )
        except (ApiError, ValidationError, InvalidTransition, NotFoundError) as error:
            return _error_response(error)
        return JSONResponse(_request_json(decided))

    return endpoint


# The approval page.


def _csrf_token(owner: tokens.TokenOwner) -> str:
    return hashlib.sha256(
        f"halo-billing-form:{owner.token_sha256}".encode()
    ).hexdigest()[:32]


def _page(name: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    return HTMLResponse(
        _templates.get_template(f"billing/{name}").render(**values),
        status_code=status_code,
    )


async def _form(request: Request) -> dict[str, str]:
    """Parse an urlencoded form body (the page posts no files)."""
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        return {}
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {name: values[-1] for name, values in fields.items()}


async def _page_owner(request: Request) -> tokens.TokenOwner | None:
    token = request.cookies.get(SESSION_COOKIE, "")
    if not token:
        return None
    owner = await _in_warehouse(request, lambda conn: tokens.authenticate(conn, token))
    if owner is None or owner.role != tokens.APPROVER:
        return None
    return owner


def _to_login() -> RedirectResponse:
    return RedirectResponse(f"{PAGE_PREFIX}/login", status_code=303)


async def page_login(request: Request) -> Response:
    if request.method == "GET":
        return _page("login.html", error=None)
    form = await _form(request)
    token = str(form.get("token", "")).strip()
    owner = (
        await _in_warehouse(request, lambda conn: tokens.authenticate(conn, token))
        if token
        else None
    )
    if owner is None or owner.role != tokens.APPROVER:
        log.info("billing page sign-in failed: invalid token or not an approver token")
        return _page(
            "login.html",
            status_code=401,
            error="invalid token, or not an approver token",
        )
    response = RedirectResponse(f"{PAGE_PREFIX}/requests", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        path=PAGE_PREFIX,
        secure=request.url.scheme == "https",
    )
    return response


async def page_logout(request: Request) -> Response:
    response = _to_login()
    response.delete_cookie(SESSION_COOKIE, path=PAGE_PREFIX)
    return response


async def page_queue(request: Request) -> Response:
    owner = await _page_owner(request)
    if owner is None:
        return _to_login()

    def work(
        conn: psycopg.Connection,
    ) -> tuple[list[BillingRequest], list[BillingRequest]]:
        pending = queue.list_requests(conn, status=PENDING, account_id=owner.account_id)
        recent = [
            item
            for item in queue.list_requests(conn, account_id=owner.account_id, limit=20)
            if item.status != PENDING
        ]
        return pending, recent

    pending, recent = await _in_warehouse(request, work)
    return _page("queue.html", owner=owner, pending=pending, recent=recent)


async def page_request(request: Request) -> Response:
    owner = await _page_owner(request)
    if owner is None:
        return _to_login()
    request_id = request.path_params["request_id"]

    def work(conn: psycopg.Connection) -> tuple[BillingRequest, Any]:
        found = _visible_request(conn, owner, request_id)
        return found, load_billing_context(conn, found)

    try:
        found, context = await _in_warehouse(request, work)
    except ApiError:
        return _page("not_found.html", status_code=404, request_id=request_id)
    message = request.query_params.get("message")
    if message not in ("approved", "rejected"):
        message = None
    return _page(
        "request.html",
        owner=owner,
        item=found,
        context=context,
        csrf=_csrf_token(owner),
        message=message,
        error=None,
    )


async def page_decision(request: Request) -> Response:
    owner = await _page_owner(request)
    if owner is None:
        return _to_login()
    request_id = request.path_params["request_id"]
    form = await _form(request)
    if not hmac.compare_digest(str(form.get("csrf", "")), _csrf_token(owner)):
        log.warning(
            "billing page decision on request %d rejected: invalid form token",
            request_id,
        )
        return HTMLResponse(
            "invalid form token; reload the page and try again", status_code=403
        )
    action = str(form.get("action", ""))
    if action not in ("approve", "reject"):
        return HTMLResponse(f"invalid action `{action}`", status_code=400)
    note = str(form.get("note", "")).strip() or None
    try:
        await _in_warehouse(
            request, lambda conn: _decide(conn, owner, request_id, action, note)
        )
    except ApiError:
        return _page("not_found.html", status_code=404, request_id=request_id)
    except (ValidationError, InvalidTransition) as error:
        log.info("billing page decision on request %d failed: %s", request_id, error)

        def reload(conn: psycopg.Connection) -> tuple[BillingRequest, Any]:
            found = _visible_request(conn, owner, request_id)
            return found, load_billing_context(conn, found)

        found, context = await _in_warehouse(request, reload)
        return _page(
            "request.html",
            status_code=409 if isinstance(error, InvalidTransition) else 422,
            owner=owner,
            item=found,
            context=context,
            csrf=_csrf_token(owner),
            message=None,
            error=str(error),
        )
    verb = "approved" if action == "approve" else "rejected"
    log.info("billing request %d %s on the page by %s", request_id, verb, owner.name)
    return RedirectResponse(
        f"{PAGE_PREFIX}/requests/{request_id}?message={verb}", status_code=303
    )


async def page_index(request: Request) -> Response:
    return RedirectResponse(f"{PAGE_PREFIX}/requests", status_code=303)


routes = [
    Route(f"{API_PREFIX}/requests", api_submit, methods=["POST"]),
    Route(f"{API_PREFIX}/requests", api_list, methods=["GET"]),
    Route(f"{API_PREFIX}/requests/{{request_id:int}}", api_show, methods=["GET"]),
    Route(
        f"{API_PREFIX}/requests/{{request_id:int}}/approve",
        _api_decision("approve"),
        methods=["POST"],
    ),
    Route(
        f"{API_PREFIX}/requests/{{request_id:int}}/reject",
        _api_decision("reject"),
        methods=["POST"],
    ),
    Route(PAGE_PREFIX, page_index, methods=["GET"]),
    Route(f"{PAGE_PREFIX}/", page_index, methods=["GET"]),
    Route(f"{PAGE_PREFIX}/login", page_login, methods=["GET", "POST"]),
    Route(f"{PAGE_PREFIX}/logout", page_logout, methods=["POST"]),
    Route(f"{PAGE_PREFIX}/requests", page_queue, methods=["GET"]),
    Route(f"{PAGE_PREFIX}/requests/{{request_id:int}}", page_request, methods=["GET"]),
    Route(
        f"{PAGE_PREFIX}/requests/{{request_id:int}}/decision",
        page_decision,
        methods=["POST"],
    ),
]
