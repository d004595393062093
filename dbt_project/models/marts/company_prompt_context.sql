-- One row per company with at least one assigned Stripe customer: a short
-- plain-text billing summary for AI prompts, one fact per line, with the
-- configured display fields of the primary customer.
with billing as (
    select * from {{ ref('company_billing') }}
),

renewals as (
    select * from {{ ref('company_renewals') }}
),

health as (
    select * from {{ ref('company_payment_health') }}
),

customers as (
    select * from {{ ref('stripe_customers') }}
),

display_lines as (
    select
        billing.company_id,
        string_agg(
            field.key || ': ' || case jsonb_typeof(field.value)
                when 'string' then field.value #>> '{}'
                else field.value::text
            end,
            E'\n'
            order by field.key
        ) as display_text
    from billing
    inner join customers
        on billing.account_id = customers.account_id
        and billing.stripe_customer_id = customers.customer_id
    cross join lateral jsonb_each(customers.display_fields) as field
    where jsonb_typeof(field.value) <> 'null'
    group by billing.company_id
),

summaries as (
    select
        billing.company_id,
        concat_ws(
            E'\n',
            'Plan: ' || coalesce(billing.plan_name, 'none')
                || coalesce(' (' || renewals.contract_term || ')', ''),
            'MRR: ' || coalesce(
                billing.mrr::text || ' ' || upper(billing.currency),
                'unknown'
            ),
            'Subscription status: ' || coalesce(billing.subscription_status, 'none'),
            'Renewal: ' || renewals.renewal_status
                || coalesce(' on ' || renewals.renewal_date::text, ''),
            'Last payment: ' || coalesce(
                (billing.last_payment_at at time zone 'UTC')::date::text, 'none'
            ),
            'Payment health: ' || coalesce(health.payment_signal, 'not scored'),
            'Lifetime value: ' || coalesce(
                billing.lifetime_value::text || ' ' || upper(billing.currency),
                'unknown'
            ),
            display_lines.display_text
        ) as prompt_context
    from billing
    inner join renewals
        on billing.company_id = renewals.company_id
    inner join health
        on billing.company_id = health.company_id
    left join display_lines
        on billing.company_id = display_lines.company_id
),

final as (
    select
        summaries.company_id,
        summaries.prompt_context,
        coalesce(customers.display_fields, '{}'::jsonb) as display_fields
    from summaries
    inner join billing
        on summaries.company_id = billing.company_id
    left join customers
        on billing.account_id = customers.account_id
        and billing.stripe_customer_id = customers.customer_id
)

select * from final
