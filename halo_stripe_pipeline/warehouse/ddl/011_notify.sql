-- The on/off switch of each notification type. A type without a row is off.
create table if not exists halo.notification_settings (
    notification_type text primary key,
    is_enabled boolean not null default false,
    updated_at timestamptz not null default now()
);

-- Slack messages waiting to be posted, and those already posted. A message
-- is written in the same transaction that applies its event and is unique
-- per `dedupe_key` (the event id), so a redelivered event posts once. `text`
-- is rendered at the first send attempt (after the marts are rebuilt). The
-- sender retries a failed post at `next_attempt_at` with a growing delay;
-- `status` is pending, sent or failed (gave up after the maximum attempts).
create table if not exists halo.slack_outbox (
    id bigint generated always as identity primary key,
    notification_type text not null,
    dedupe_key text not null unique,
    account_id text,
    event_id text,
    event_type text,
    object_id text,
    text text,
    status text not null default 'pending',
    attempts integer not null default 0,
    next_attempt_at timestamptz not null default now(),
    last_error text,
    created_at timestamptz not null default now(),
    sent_at timestamptz
);

create index if not exists slack_outbox_due
    on halo.slack_outbox (next_attempt_at, id)
    where status = 'pending';
