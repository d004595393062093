-- One row per company with at least one assigned Stripe customer: the
-- billing fields audience filters read, in one flat row.
with billing as (
    select * from {{ ref('company_billing') }}
),

renewals as (
    select * from {{ ref('company_renewals') }}
),

health as (
    select * from {{ ref('company_payment_health') }}
),

final as (
    select
        billing.company_id,
        billing.account_id,
        billing.subscription_status,
        billing.plan_name,
        billing.mrr,
        billing.currency,
        billing.mrr_reporting,
        billing.reporting_currency,
        billing.lifetime_value,
        billing.lifetime_value_reporting,
        renewals.renewal_status,
        renewals.renewal_date,
        renewals.contract_term,
        health.payment_signal,
        health.payment_score,
        billing.mrr_mode,
        billing.last_payment_at
    from billing
    inner join renewals
        on billing.company_id = renewals.company_id
    inner join health
        on billing.company_id = health.company_id
)

select * from final
