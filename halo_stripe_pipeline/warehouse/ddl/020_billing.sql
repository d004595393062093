-- The billing approval queue: requests from agents, decisions by approvers,
-- execution against Stripe. Amounts are integer minor units of `currency`.
create schema if not exists billing;

-- Which agents may submit billing requests. An agent missing here, or with
-- `billing_enabled = false`, has its requests rejected at submission.
create table if not exists billing.agents (
    agent_id text primary key,
    billing_enabled boolean not null default false,
    updated_by text,
    updated_at timestamptz not null default now()
);

-- One row per Stripe account: who reviews and approves its requests.
create table if not exists billing.account_settings (
    account_id text primary key,
    default_action_agent text,
    default_approver text,
    updated_at timestamptz not null default now()
);

-- Auto-approval: a request of `request_type` whose amount in `unit` is
-- strictly below `below_amount` is approved at submission. `unit` is a
-- currency code (amount in minor units) or `days` for trial extensions.
create table if not exists billing.approval_thresholds (
    account_id text not null,
    request_type text not null,
    unit text not null,
    below_amount bigint not null check (below_amount >= 0),
    updated_at timestamptz not null default now(),
    primary key (account_id, request_type, unit)
);

create table if not exists billing.requests (
    id bigint generated always as identity primary key,
    request_key uuid not null unique default gen_random_uuid(),
    request_type text not null check (request_type in (
        'refund', 'cancel_at_period_end', 'cancel_immediately',
        'apply_credit', 'extend_trial'
    )),
    status text not null default 'pending' check (status in (
        'pending', 'approved', 'rejected', 'executing', 'succeeded', 'failed'
    )),
    account_id text not null,
    company_id text,
    customer_id text not null,
    charge_id text,
    subscription_id text,
    amount_minor bigint check (amount_minor > 0),
    currency text,
    days integer check (days between 1 and 730),
    reason text not null,
    summary text not null,
    requested_by text not null,
    assigned_to text,
    is_auto_approved boolean not null default false,
    decided_by text,
    decision_note text,
    -- Part of the idempotency keys. An explicit retry of a failed request
    -- increments it, so that retry is a new Stripe call. A resume after a
    -- crash keeps it and replays the same call.
    execution_generation integer not null default 1,
    -- The Stripe calls of the current generation, written before the first
    -- call is sent; each step gets its `result` as it completes.
    execution_plan jsonb,
    result jsonb,
    error text,
    created_at timestamptz not null default now(),
    decided_at timestamptz,
    executed_at timestamptz,
    updated_at timestamptz not null default now()
);

-- At most one open request of a type per Stripe object: the subscription
-- (so two cancellations refunding different charges clash), else the charge
-- of a refund, else the customer of a credit. The older index put the charge
-- first. NOTE: the create fails while two open requests share a key.
drop index if exists billing.requests_one_open_per_object;
create unique index if not exists requests_one_open_per_subject
    on billing.requests (
        account_id, request_type, coalesce(subscription_id, charge_id, customer_id)
    )
    where status in ('pending', 'approved', 'executing');

create index if not exists requests_by_status on billing.requests (status, id);

-- Every status change: who, when and why.
create table if not exists billing.request_events (
    id bigint generated always as identity primary key,
    request_id bigint not null references billing.requests (id),
    from_status text,
    to_status text not null,
    actor text not null,
    note text,
    details jsonb not null default '{}'::jsonb,
    created_at timestamptz not null default now()
);

create index if not exists request_events_by_request
    on billing.request_events (request_id, id);

-- API tokens of the billing API: only the SHA-256 of a token is stored.
-- `agent` tokens submit and read their own requests; `approver` tokens list
-- and decide the requests of `account_id`.
create table if not exists billing.api_tokens (
    token_sha256 text primary key,
    name text not null,
    role text not null check (role in ('agent', 'approver')),
    account_id text,
    created_at timestamptz not null default now(),
    revoked_at timestamptz,
    check (role = 'agent' or account_id is not null)
);
