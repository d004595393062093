-- Raw Stripe objects, one table per object type, keyed by (account_id, id).
-- `data` is the whole object as Stripe sent it; the typed columns beside it
-- are the ones every loader needs. `observed_at` is the instant the stored
-- state reflects (the list request's time for a backfill, the event's
-- `created` for a webhook), so an older state never overwrites a newer one.
create schema if not exists stripe_raw;

do $$
declare
    object_table text;
begin
    foreach object_table in array array[
        'customers', 'subscriptions', 'charges', 'refunds',
        'invoices', 'prices', 'products', 'plans', 'coupons'
    ]
    loop
        execute format(
            'create table if not exists stripe_raw.%I (
                account_id text not null,
                id text not null,
                created_at timestamptz,
                data jsonb not null,
                is_deleted boolean not null default false,
                observed_at timestamptz not null,
                synced_at timestamptz not null default now(),
                primary key (account_id, id)
            )',
            object_table
        );
    end loop;
end
$$;

-- The Stripe accounts seen by a sync (`GET /v1/account`).
create table if not exists stripe_raw.accounts (
    account_id text primary key,
    data jsonb not null,
    livemode boolean,
    synced_at timestamptz not null default now()
);

-- Progress of each backfill per account and object type, so a failed run
-- reports where it stopped and a rerun can finish the load.
create table if not exists stripe_raw.sync_state (
    account_id text not null,
    object_type text not null,
    status text not null,
    run_id text,
    started_at timestamptz,
    finished_at timestamptz,
    objects_loaded bigint not null default 0,
    pages_loaded bigint not null default 0,
    last_cursor text,
    error text,
    primary key (account_id, object_type)
);
