-- One row per company with at least one assigned Stripe customer: the
-- renewal fields of its primary subscription, or `none` when none of its
-- subscriptions is still running. Dates are UTC calendar dates.
with primaries as (
    select * from {{ ref('int_halo__company_primaries') }}
),

subscriptions as (
    select * from {{ ref('int_stripe__subscriptions') }}
),

final as (
    select
        primaries.company_id,
        primaries.account_id,
        primaries.customer_id as stripe_customer_id,
        primaries.subscription_id,
        coalesce(subscriptions.renewal_status, 'none') as renewal_status,
        (subscriptions.renewal_at at time zone 'UTC')::date as renewal_date,
        subscriptions.contract_term,
        (subscriptions.next_billing_at at time zone 'UTC')::date
            as next_billing_date,
        subscriptions.renewal_at,
        subscriptions.next_billing_at
    from primaries
    left join subscriptions
        on primaries.account_id = subscriptions.account_id
        and primaries.subscription_id = subscriptions.subscription_id
)

select * from final
