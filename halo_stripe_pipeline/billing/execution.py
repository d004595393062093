"""Execution of approved requests against Stripe, guarded against repeats.

How a request avoids running twice:

1. Claiming: an executor holds a PostgreSQL session advisory lock on the
   request while it works, so two executors never run one request at once.
   A request left `executing` with no lock held is an orphan of a crashed
   executor, and the next run resumes it.
2. The plan: before the first Stripe call, the executor stores every call
   (method, path, parameters, idempotency key) in `execution_plan`. A resumed
   request replays the stored calls unchanged, so a trial end computed from
   "now" is not computed again and moved twice.
3. Idempotency keys: `halo-billing/<request_key>/<generation>/<step>`. Stripe
   returns the stored response for a key it has seen in the last 24 hours.
4. Lookups before each call: refunds and balance transactions carry the
   request key in their metadata, and the executor searches for one before
   creating it. This covers emulators without idempotency keys (localstripe
   1.15 ignores the header) and a resume after Stripe's 24-hour window.

Subscription updates set absolute values (`cancel_at_period_end=true`, a
stored `trial_end`), so sending one twice leaves the same state.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from halo_stripe_pipeline.billing.models import (
    APPLY_CREDIT,
    APPROVED,
    CANCEL_AT_PERIOD_END,
    CANCEL_IMMEDIATELY,
    EXECUTING,
    EXTEND_TRIAL,
    FAILED,
    REFUND,
    SUCCEEDED,
    BillingError,
    BillingRequest,
    InvalidTransition,
)
from halo_stripe_pipeline.billing.queue import get_request, transition
from halo_stripe_pipeline.billing.validation import ENDED_SUBSCRIPTION_STATUSES
from halo_stripe_pipeline.config import DEFAULT_STRIPE_API_BASE
from halo_stripe_pipeline.connect.secrets import AccountDisconnected
from halo_stripe_pipeline.money import format_minor
from halo_stripe_pipeline.stripe_client import (
    StripeApi,
    StripeApiError,
    stripe_api_from_env,
)

log = logging.getLogger(__name__)

# First key of the two-key advisory lock; the second is the request id.
ADVISORY_LOCK_NAMESPACE = 20_020
EXECUTOR_ACTOR = "executor"
SECONDS_PER_DAY = 86_400
METADATA_REQUEST_KEY = "halo_billing_request"
METADATA_STEP = "halo_billing_step"

StripeApiFactory = Callable[[psycopg.Connection, str], StripeApi]
AfterCallHook = Callable[[BillingRequest, dict[str, Any], dict[str, Any]], None]


class PrecheckFailed(BillingError):
    """Stripe's current state no longer allows the approved action."""


def default_stripe_api(conn: psycopg.Connection, account_id: str) -> StripeApi:
    """Return the client for `account_id`: its stored credentials, else the environment."""
    try:
        from halo_stripe_pipeline.credentials import stripe_api_for_account
    except ImportError:
        return stripe_api_from_env()
    return stripe_api_for_account(conn, account_id)


def idempotency_key(request: BillingRequest, step_name: str) -> str:
    return (
        f"halo-billing/{request.request_key}/{request.execution_generation}/{step_name}"
    )


def step_names(request: BillingRequest) -> list[str]:
    """Return the Stripe steps of a request type, in execution order."""
    if request.request_type == CANCEL_IMMEDIATELY:
        return ["cancel_subscription"] + (["refund"] if request.charge_id else [])
    return [request.request_type]


def trial_end_after_extension(
    current_trial_end: int | None, days: int, now: int
) -> int:
    """Move the trial end `days` days past the later of now and the current end.

    Stripe rejects a `trial_end` in the past, so an ended trial restarts
    from now rather than from its old end.
    """
    return max(now, current_trial_end or 0) + days * SECONDS_PER_DAY


def _metadata(request: BillingRequest, step_name: str) -> dict[str, str]:
    return {METADATA_REQUEST_KEY: request.request_key, METADATA_STEP: step_name}


class Executor:
    """Runs approved requests; see the module docstring for the guarantees.

    `stripe_api_for` returns the client of an account. `after_stripe_call`
    runs after each successful Stripe call and before its response is
    stored, which lets a test simulate a crash at the worst moment.
    `send_proration_behavior` defaults to true only for api.stripe.com.
    """

    def __init__(
        self,
        conn: psycopg.Connection,
        *,
        stripe_api_for: StripeApiFactory = default_stripe_api,
        after_stripe_call: AfterCallHook | None = None,
        send_proration_behavior: bool | None = None,
        actor: str = EXECUTOR_ACTOR,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        if not conn.autocommit:
            raise ValueError("the executor needs an autocommit connection")
        self.conn = conn
        self.stripe_api_for = stripe_api_for
        self.after_stripe_call = after_stripe_call
        self.send_proration_behavior = send_proration_behavior
        self.actor = actor
        self.clock = clock

    def runnable_ids(self, request_ids: list[int] | None = None) -> list[int]:
        rows = self.conn.execute(
            """
            select id from billing.requests
            where status in (%s, %s) and (%s::bigint[] is null or id = any(%s::bigint[]))
            order by id
            """,
            (APPROVED, EXECUTING, request_ids, request_ids),
        ).fetchall()
        return [int(row[0]) for row in rows]

    def run(self, request_ids: list[int] | None = None) -> list[BillingRequest]:
        """Execute approved requests and resume orphaned ones; return those handled."""
        handled = []
        candidates = self.runnable_ids(request_ids)
        log.info(
            "billing executor: %d request(s) approved or left executing",
            len(candidates),
        )
        for request_id in candidates:
            with self._claimed(request_id) as claimed:
                if not claimed:
                    log.info(
                        "billing request %d is being executed elsewhere; skipped",
                        request_id,
                    )
                    continue
                outcome = self._execute_claimed(request_id)
                if outcome is not None:
                    handled.append(outcome)
        succeeded = sum(1 for request in handled if request.status == SUCCEEDED)
        log.info(
            "billing executor: %d succeeded, %d failed",
            succeeded,
            len(handled) - succeeded,
        )
        return handled

    @contextmanager
    def _claimed(self, request_id: int) -> Iterator[bool]:
        row = self.conn.execute(
            "select pg_try_advisory_lock(%s, %s)", (ADVISORY_LOCK_NAMESPACE, request_id)
        ).fetchone()
        claimed = bool(row and row[0])
        try:
            yield claimed
        finally:
            if claimed:
                self.conn.execute(
                    "select pg_advisory_unlock(%s, %s)",
                    (ADVISORY_LOCK_NAMESPACE, request_id),
                )

    def _execute_claimed(self, request_id: int) -> BillingRequest | None:
        request = get_request(self.conn, request_id)
        if request.status not in (APPROVED, EXECUTING):
            return None
        # Built before the status changes, so a missing Stripe key (a
        # ConfigError) leaves the request approved rather than executing.
        # A disconnected account fails only its own requests, and the batch
        # goes on with the other accounts.
        api: StripeApi | None = None
        failure = ""
        try:
            api = self.stripe_api_for(self.conn, request.account_id)
        except AccountDisconnected as error:
            failure = str(error)
        if request.status == APPROVED:
            try:
                request = transition(
                    self.conn,
                    request_id,
                    to_status=EXECUTING,
                    actor=self.actor,
                    from_statuses=(APPROVED,),
                    details={"generation": request.execution_generation},
                )
            except InvalidTransition:
                return None
        else:
            log.warning(
                "billing request %d was left executing by a stopped executor; resuming "
                "generation %d",
                request_id,
                request.execution_generation,
            )
        if api is None:
            return self._fail(request, failure, request.execution_plan)
        return self._execute(request, api)

    def _execute(self, request: BillingRequest, api: StripeApi) -> BillingRequest:
        plan = request.execution_plan
        if not plan or plan.get("generation") != request.execution_generation:
            try:
                plan = self._build_plan(request, api, plan)
            except (PrecheckFailed, StripeApiError) as error:
                return self._fail(request, str(error), plan)
            self._save_plan(request, plan)
        for step in plan["steps"]:
            if step.get("response") is not None:
                continue
            try:
                step["response"] = self._perform(request, api, step)
            except StripeApiError as error:
                return self._fail(request, str(error), plan)
            self._save_plan(request, plan)
        return transition(
            self.conn,
            request.id,
            to_status=SUCCEEDED,
            actor=self.actor,
            from_statuses=(EXECUTING,),
            changes={
                "result": summarize_plan(plan),
                "execution_plan": plan,
                "executed_at": self.clock(),
            },
        )

    def _perform(
        self, request: BillingRequest, api: StripeApi, step: dict[str, Any]
    ) -> dict[str, Any]:
        existing = self._lookup(api, step)
        if existing is not None:
            log.warning(
                "billing request %d step %s already done in Stripe (%s); not sending it again",
                request.id,
                step["name"],
                existing.get("id"),
            )
            return existing
        log.info(
            "billing request %d: %s %s (idempotency key %s)",
            request.id,
            step["method"].upper(),
            step["path"],
            step["idempotency_key"],
        )
        response = api.request(
            step["method"],
            step["path"],
            step["params"],
            idempotency_key=step["idempotency_key"],
        )
        if self.after_stripe_call is not None:
            self.after_stripe_call(request, step, response)
        return response

    def _lookup(self, api: StripeApi, step: dict[str, Any]) -> dict[str, Any] | None:
        lookup = step.get("lookup")
        if not lookup:
            return None
        if lookup["kind"] == "subscription_ended":
            subscription = api.get(lookup["path"])
            return (
                subscription
                if subscription.get("status") in ENDED_SUBSCRIPTION_STATUSES
                else None
            )
        for page in api.list_pages(lookup["path"], lookup.get("params")):
            for obj in page:
                metadata = obj.get("metadata") or {}
                if (
                    metadata.get(METADATA_REQUEST_KEY) == lookup["request_key"]
                    and metadata.get(METADATA_STEP) == step["name"]
                ):
                    return obj
        return None

    def _save_plan(self, request: BillingRequest, plan: dict[str, Any]) -> None:
        self.conn.execute(
            "update billing.requests set execution_plan = %s, updated_at = now()"
            " where id = %s and status = %s",
            (Jsonb(plan), request.id, EXECUTING),
        )

    def _fail(
        self, request: BillingRequest, message: str, plan: dict[str, Any] | None
    ) -> BillingRequest:
        log.warning("billing request %d failed: %s", request.id, message)
        changes: dict[str, Any] = {"error": message}
        if plan is not None:
            changes["execution_plan"] = plan
            changes["result"] = summarize_plan(plan)
        return transition(
            self.conn,
            request.id,
            to_status=FAILED,
            actor=self.actor,
            note=message,
            from_statuses=(EXECUTING,),
            changes=changes,
        )

    def _build_plan(
        self, request: BillingRequest, api: StripeApi, previous: dict[str, Any] | None
    ) -> dict[str, Any]:
        """Check Stripe's live state and write down the calls of this generation.

        Steps that succeeded in an earlier generation are kept as they are.
        A step sent in an earlier generation without a stored response (a
        timeout, say) may have happened, so its planner gets that attempt.
        """
        earlier = {step["name"]: step for step in (previous or {}).get("steps", [])}
        now = int(self.clock().timestamp())
        steps = []
        for name in step_names(request):
            attempt = earlier.get(name)
            if attempt is not None and attempt.get("response") is not None:
                steps.append(attempt)
            else:
                steps.append(self._plan_step(request, api, name, now, attempt))
        return {
            "generation": request.execution_generation,
            "planned_at": self.clock().isoformat(),
            "steps": steps,
        }

    def _plan_step(
        self,
        request: BillingRequest,
        api: StripeApi,
        name: str,
        now: int,
        attempt: dict[str, Any] | None,
    ) -> dict[str, Any]:
        if name == REFUND:
            return self._plan_refund(request, api, attempt)
        if name == "cancel_subscription":
            return self._plan_cancel_immediately(request, api, attempt)
        if name == CANCEL_AT_PERIOD_END:
            return self._plan_cancel_at_period_end(request, api, attempt)
        if name == EXTEND_TRIAL:
            return self._plan_extend_trial(request, api, now, attempt)
        if name == APPLY_CREDIT:
            return self._plan_apply_credit(request, api)
        raise BillingError(f"no execution step named `{name}`")

    def _step(
        self,
        request: BillingRequest,
        name: str,
        method: str,
        path: str,
        params: dict[str, Any],
        lookup: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return {
            "name": name,
            "method": method,
            "path": path,
            "params": params,
            "idempotency_key": idempotency_key(request, name),
            "lookup": lookup,
            "response": None,
        }

    def _plan_refund(
        self, request: BillingRequest, api: StripeApi, attempt: dict[str, Any] | None
    ) -> dict[str, Any]:
        assert request.charge_id
        assert request.amount_minor
        assert request.currency
        params = {
            "charge": request.charge_id,
            "amount": request.amount_minor,
            "metadata": _metadata(request, REFUND),
        }
        lookup = {
            "kind": "metadata",
            "path": "/v1/refunds",
            "params": {"charge": request.charge_id},
            "request_key": request.request_key,
        }
        step = self._step(request, REFUND, "post", "/v1/refunds", params, lookup)
        # An earlier attempt whose response was lost may have refunded the
        # charge already. The lookup comes first, because the refundable check
        # would count that refund as one made elsewhere and fail the request.
        if attempt is not None:
            step["response"] = self._lookup(api, step)
            if step["response"] is not None:
                return step
        charge = api.get(f"/v1/charges/{request.charge_id}")
        check_refundable(charge, request.amount_minor, request.currency)
        return step

    def _live_subscription(
        self, request: BillingRequest, api: StripeApi, *, may_be_ended: bool = False
    ) -> dict[str, Any]:
        assert request.subscription_id
        subscription = api.get(f"/v1/subscriptions/{request.subscription_id}")
        ended = subscription.get("status") in ENDED_SUBSCRIPTION_STATUSES
        if ended and not may_be_ended:
            raise PrecheckFailed(
                f"subscription `{request.subscription_id}` was canceled after the request "
                f"was approved (status `{subscription.get('status')}`)"
            )
        return subscription

    def _plan_cancel_immediately(
        self, request: BillingRequest, api: StripeApi, attempt: dict[str, Any] | None
    ) -> dict[str, Any]:
        # After an earlier attempt whose response was lost, a canceled
        # subscription counts as this step done.
        subscription = self._live_subscription(
            request, api, may_be_ended=attempt is not None
        )
        if request.charge_id:
            assert request.amount_minor
            assert request.currency
            charge = api.get(f"/v1/charges/{request.charge_id}")
            check_refundable(charge, request.amount_minor, request.currency)
        path = f"/v1/subscriptions/{request.subscription_id}"
        lookup = {"kind": "subscription_ended", "path": path}
        step = self._step(request, "cancel_subscription", "delete", path, {}, lookup)
        if subscription.get("status") in ENDED_SUBSCRIPTION_STATUSES:
            step["response"] = subscription
        return step

    def _plan_cancel_at_period_end(
        self, request: BillingRequest, api: StripeApi, attempt: dict[str, Any] | None
    ) -> dict[str, Any]:
        subscription = self._live_subscription(request, api)
        # After an earlier attempt whose response was lost, the flag may be
        # set by that attempt, and setting it again changes nothing.
        if subscription.get("cancel_at_period_end") and attempt is None:
            raise PrecheckFailed(
                f"subscription `{request.subscription_id}` was set to cancel at period end "
                "after the request was approved"
            )
        path = f"/v1/subscriptions/{request.subscription_id}"
        params = {
            "cancel_at_period_end": True,
            "metadata": _metadata(request, CANCEL_AT_PERIOD_END),
        }
        return self._step(request, CANCEL_AT_PERIOD_END, "post", path, params)

    def _plan_extend_trial(
        self,
        request: BillingRequest,
        api: StripeApi,
        now: int,
        attempt: dict[str, Any] | None,
    ) -> dict[str, Any]:
        assert request.days
        subscription = self._live_subscription(request, api)
        trial_end = trial_end_after_extension(
            subscription.get("trial_end"), request.days, now
        )
        # An earlier attempt may have moved the trial end already. Its target
        # is kept while still in the future, because computing again from the
        # live trial end would extend the trial twice.
        earlier_trial_end = (attempt or {}).get("params", {}).get("trial_end")
        if isinstance(earlier_trial_end, int) and earlier_trial_end > now:
            trial_end = earlier_trial_end
        params: dict[str, Any] = {
            "trial_end": trial_end,
            "metadata": _metadata(request, EXTEND_TRIAL),
        }
        if self._sends_proration_behavior(api):
            params["proration_behavior"] = "none"
        path = f"/v1/subscriptions/{request.subscription_id}"
        return self._step(request, EXTEND_TRIAL, "post", path, params)

    def _sends_proration_behavior(self, api: StripeApi) -> bool:
        # NOTE: localstripe 1.15 returns a 500 for `proration_behavior` on a
        # subscription update and never prorates a `trial_end` change, so the
        # parameter goes only to api.stripe.com unless set explicitly.
        if self.send_proration_behavior is not None:
            return self.send_proration_behavior
        return api.api_base.rstrip("/") == DEFAULT_STRIPE_API_BASE

    def _plan_apply_credit(
        self, request: BillingRequest, api: StripeApi
    ) -> dict[str, Any]:
        assert request.amount_minor and request.currency
        customer = api.get(f"/v1/customers/{request.customer_id}")
        if customer.get("deleted"):
            raise PrecheckFailed(
                f"customer `{request.customer_id}` was deleted in Stripe"
            )
        customer_currency = (customer.get("currency") or "").lower()
        if customer_currency and customer_currency != request.currency:
            raise PrecheckFailed(
                f"customer `{request.customer_id}` is billed in {customer_currency}, not "
                f"{request.currency}; a balance credit must use the customer's currency"
            )
        path = f"/v1/customers/{request.customer_id}/balance_transactions"
        params = {
            # A negative amount credits the balance; a positive one is a debit.
            "amount": -request.amount_minor,
            "currency": request.currency,
            "description": f"Credit approved in Halo (billing request {request.id})",
            "metadata": _metadata(request, APPLY_CREDIT),
        }
        lookup = {
            "kind": "metadata",
            "path": path,
            "params": {},
            "request_key": request.request_key,
        }
        return self._step(request, APPLY_CREDIT, "post", path, params, lookup)


def check_refundable(charge: dict[str, Any], amount_minor: int, currency: str) -> None:
    """Raise `PrecheckFailed` unless Stripe can still refund `amount_minor` of the charge."""
    charge_id = charge.get("id")
    if charge.get("status") != "succeeded":
        raise PrecheckFailed(
            f"charge `{charge_id}` has status `{charge.get('status')}` in Stripe"
        )
    if (charge.get("currency") or "").lower() != currency:
        raise PrecheckFailed(
            f"charge `{charge_id}` is in {charge.get('currency')}, not {currency}"
        )
    remaining = int(charge.get("amount") or 0) - int(charge.get("amount_refunded") or 0)
    if remaining < amount_minor:
        raise PrecheckFailed(
            f"charge `{charge_id}` has only {format_minor(max(remaining, 0), currency)} left to "
            f"refund in Stripe, less than the approved {format_minor(amount_minor, currency)}; "
            "it was refunded elsewhere after approval"
        )


def summarize_response(name: str, response: dict[str, Any]) -> dict[str, Any]:
    """Return the fields of a Stripe response that show what the step changed."""
    kind = response.get("object")
    if kind == "refund":
        fields = ("id", "amount", "currency", "status", "charge")
    elif kind == "subscription":
        fields = (
            "id",
            "status",
            "cancel_at_period_end",
            "cancel_at",
            "canceled_at",
            "ended_at",
            "trial_end",
        )
    elif kind == "customer_balance_transaction":
        fields = ("id", "amount", "currency", "ending_balance", "customer", "type")
    else:
        fields = ("id", "object")
    return {"object": kind, **{field: response.get(field) for field in fields}}


def summarize_plan(plan: dict[str, Any]) -> dict[str, Any]:
    return {
        step["name"]: summarize_response(step["name"], step["response"])
        for step in plan.get("steps", [])
        if step.get("response") is not None
    }
