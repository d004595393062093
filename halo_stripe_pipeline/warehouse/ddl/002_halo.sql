-- Halo's side: companies (imported from CSV) and integration settings.
create schema if not exists halo;

create table if not exists halo.companies (
    id text primary key,
    workspace_id text not null default 'default',
    name text,
    domain text,
    email text,
    stripe_customer_id text,
    traits jsonb not null default '{}'::jsonb,
    imported_at timestamptz not null default now()
);

-- One row per Stripe account. Columns are the settings `halo-stripe settings`
-- edits; halo_stripe_pipeline/settings.py defines their allowed values.
create table if not exists halo.integration_settings (
    account_id text primary key,
    workspace_id text not null default 'default',
    customer_id_field text not null default 'email',
    mrr_mode text not null default 'stripe_subscription',
    display_fields jsonb not null default '[]'::jsonb,
    health_statuses jsonb not null default '["active"]'::jsonb,
    reporting_currency text not null default 'usd',
    ingest_enabled boolean not null default true,
    updated_at timestamptz not null default now()
);

-- Exchange rates for the single reporting-currency figure: one unit of
-- `currency` is `rate` units of `reporting_currency`.
create table if not exists halo.exchange_rates (
    currency text not null,
    reporting_currency text not null,
    rate numeric not null check (rate > 0),
    updated_at timestamptz not null default now(),
    primary key (currency, reporting_currency)
);
