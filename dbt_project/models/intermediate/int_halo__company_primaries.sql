-- One row per company with at least one assigned customer: its primary
-- subscription, primary customer and the settings of that customer's
-- account.
--
-- The primary subscription is the company's non-ended subscription with
-- the largest undiscounted monthly amount, then the earliest renewal date,
-- then the subscription id. The primary customer owns it; a company whose
-- subscriptions have all ended takes its most specific, non-deleted, most
-- recently created customer instead.
with matches as (
    select * from {{ ref('int_halo__company_customer_matches') }}
    where is_assigned
),

customers as (
    select * from {{ ref('stg_stripe__customers') }}
),

subscriptions as (
    select * from {{ ref('int_stripe__subscriptions') }}
),

settings as (
    select * from {{ ref('stg_halo__integration_settings') }}
),

primary_subscriptions as (
    select distinct on (matches.company_id)
        matches.company_id,
        subscriptions.account_id,
        subscriptions.customer_id,
        subscriptions.subscription_id
    from matches
    inner join subscriptions
        on matches.account_id = subscriptions.account_id
        and matches.customer_id = subscriptions.customer_id
    where not subscriptions.is_ended
    order by
        matches.company_id,
        subscriptions.undiscounted_monthly_amount_minor desc,
        subscriptions.renewal_at nulls last,
        subscriptions.subscription_id
),

fallback_customers as (
    select distinct on (matches.company_id)
        matches.company_id,
        matches.account_id,
        matches.customer_id
    from matches
    inner join customers
        on matches.account_id = customers.account_id
        and matches.customer_id = customers.customer_id
    order by
        matches.company_id,
        matches.match_rank,
        customers.is_deleted,
        customers.created_at desc nulls last,
        customers.customer_id
),

customer_counts as (
    select
        company_id,
        count(*) as customer_count
    from matches
    group by company_id
),

final as (
    select
        fallback_customers.company_id,
        coalesce(primary_subscriptions.account_id, fallback_customers.account_id)
            as account_id,
        coalesce(primary_subscriptions.customer_id, fallback_customers.customer_id)
            as customer_id,
        primary_subscriptions.subscription_id,
        customer_counts.customer_count,
        coalesce(settings.mrr_mode, 'stripe_subscription') as mrr_mode,
        coalesce(settings.reporting_currency, 'usd') as reporting_currency,
        coalesce(settings.health_statuses, '["active"]'::jsonb)
            as health_statuses,
        coalesce(settings.display_fields, '[]'::jsonb) as display_fields
    from fallback_customers
    inner join customer_counts
        on fallback_customers.company_id = customer_counts.company_id
    left join primary_subscriptions
        on fallback_customers.company_id = primary_subscriptions.company_id
    left join settings
        on coalesce(primary_subscriptions.account_id, fallback_customers.account_id)
            = settings.account_id
)

select * from final
