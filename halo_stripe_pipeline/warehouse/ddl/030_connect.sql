-- Stripe accounts connected to Halo workspaces (OAuth or a data-team key).
-- Every secret column contains AES-GCM ciphertext written by
-- halo_stripe_pipeline/connect/crypto.py under HALO_ENCRYPTION_KEY; the
-- plaintext never reaches the database. A disconnected account keeps its
-- row (without secrets) so `halo-stripe accounts list` can still show it.
create table if not exists halo.stripe_connections (
    account_id text primary key,
    workspace_id text not null,
    status text not null
        check (status in ('connected', 'disconnected')),
    connection_type text not null
        check (connection_type in ('oauth', 'api_key')),
    -- The Stripe API base the account was connected through; null means the
    -- configured STRIPE_API_BASE. Only emulators and tests set another one.
    api_base text,
    livemode boolean,
    scope text,
    publishable_key text,
    access_token_encrypted text,
    refresh_token_encrypted text,
    webhook_endpoint_id text,
    webhook_api_version text,
    webhook_secret_encrypted text,
    webhook_error text,
    connected_at timestamptz not null default now(),
    disconnected_at timestamptz,
    purged_at timestamptz,
    updated_at timestamptz not null default now()
);

create index if not exists stripe_connections_workspace
    on halo.stripe_connections (workspace_id);

-- OAuth `state` values handed to Stripe's authorize page. Only a SHA-256
-- hash of each state is stored, so reading this table does not allow
-- completing someone else's flow. A state is single-use (`used_at`) and
-- expires at `expires_at`.
create table if not exists halo.oauth_states (
    state_hash text primary key,
    workspace_id text not null,
    redirect_uri text not null,
    created_at timestamptz not null default now(),
    expires_at timestamptz not null,
    used_at timestamptz
);

-- Full syncs requested for an account (after a connect, or by hand). The
-- `stripe_connect_sync_requests` sensor turns each pending row into a run of
-- the full-sync job for that account's partition.
create table if not exists halo.sync_requests (
    id bigint generated always as identity primary key,
    account_id text not null,
    reason text not null,
    status text not null default 'pending'
        check (status in ('pending', 'submitted', 'cancelled')),
    run_key text,
    requested_at timestamptz not null default now(),
    submitted_at timestamptz
);

create index if not exists sync_requests_pending
    on halo.sync_requests (id)
    where status = 'pending';

-- The platform's Connect webhook endpoints (`connect=true`), which receive
-- the events of every account connected by OAuth, each with its `account`.
-- Stripe does not let a platform create endpoints on a connected account,
-- so OAuth accounts share these; one row per endpoint URL.
create table if not exists halo.connect_webhook_endpoints (
    url text primary key,
    endpoint_id text not null,
    api_version text not null,
    secret_encrypted text not null,
    created_at timestamptz not null default now()
);
