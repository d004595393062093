-- Every verified Stripe event, as delivered to the receiver or read back by
-- `halo-stripe catch-up`, keyed by the event id so a redelivery changes
-- nothing. `seq` is the arrival order. `account_id` is the event's `account`
-- (Connect) and null for the platform's own account. `status` is pending
-- (waiting to be applied), applied, superseded (older than the state the row
-- already reflects), ignored (a type the product does not process, or an
-- object without an id) or failed (see `error`, retried up to 5 times).
create table if not exists stripe_raw.webhook_events (
    id text primary key,
    seq bigint generated always as identity,
    account_id text,
    type text not null,
    api_version text,
    created_at timestamptz not null,
    livemode boolean,
    object_type text,
    object_id text,
    payload jsonb not null,
    source text not null default 'webhook',
    received_at timestamptz not null default now(),
    applied_at timestamptz,
    status text not null default 'pending',
    attempts integer not null default 0,
    error text
);

create unique index if not exists webhook_events_seq
    on stripe_raw.webhook_events (seq);

create index if not exists webhook_events_pending
    on stripe_raw.webhook_events (seq)
    where status in ('pending', 'failed');

create index if not exists webhook_events_account_created
    on stripe_raw.webhook_events (account_id, created_at);
