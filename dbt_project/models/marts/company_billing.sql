-- One row per company with at least one assigned Stripe customer.
--
-- Money is in major units. `currency` is the company's only currency when
-- all of its MRR and lifetime value is in one. With several, `currency` is
-- the reporting currency, and `mrr` and `lifetime_value` are converted with
-- halo.exchange_rates. A missing rate makes the figure that needs it null
-- and sets `is_exchange_rate_missing`. Per-currency figures are never added
-- together.
with primaries as (
    select * from {{ ref('int_halo__company_primaries') }}
),

money as (
    select * from {{ ref('int_halo__company_money') }}
),

matches as (
    select * from {{ ref('int_halo__company_customer_matches') }}
    where is_assigned
),

subscriptions as (
    select * from {{ ref('int_stripe__subscriptions') }}
),

payment_facts as (
    select * from {{ ref('int_stripe__customer_payment_facts') }}
),

exchange_rates as (
    select * from {{ ref('stg_halo__exchange_rates') }}
),

latest_subscriptions as (
    select distinct on (matches.company_id)
        matches.company_id,
        subscriptions.subscription_id,
        subscriptions.status,
        subscriptions.plan_name,
        subscriptions.currency
    from matches
    inner join subscriptions
        on matches.account_id = subscriptions.account_id
        and matches.customer_id = subscriptions.customer_id
    order by
        matches.company_id,
        subscriptions.created_at desc nulls last,
        subscriptions.subscription_id
),

last_payments as (
    select
        matches.company_id,
        max(payment_facts.last_payment_at) as last_payment_at
    from matches
    inner join payment_facts
        on matches.account_id = payment_facts.account_id
        and matches.customer_id = payment_facts.customer_id
    group by matches.company_id
),

converted as (
    select
        money.company_id,
        money.currency,
        money.mrr,
        money.lifetime_value,
        money.mrr_minor,
        money.lifetime_value_minor,
        money.mrr_minor <> 0
            or money.lifetime_value_minor <> 0
            or money.is_manual as is_used,
        case
            when money.currency = primaries.reporting_currency then 1::numeric
            else exchange_rates.rate
        end as rate,
        money.mrr_minor
            / power(10::numeric, {{ currency_exponent('money.currency') }})
            as mrr_major_exact,
        money.lifetime_value_minor
            / power(10::numeric, {{ currency_exponent('money.currency') }})
            as lifetime_value_major_exact,
        primaries.reporting_currency
    from money
    inner join primaries
        on money.company_id = primaries.company_id
    left join exchange_rates
        on money.currency = exchange_rates.currency
        and primaries.reporting_currency = exchange_rates.reporting_currency
),

per_company as (
    select
        company_id,
        count(*) filter (where is_used) as used_currency_count,
        min(currency) filter (where is_used) as used_currency,
        bool_or(rate is null and is_used) as is_exchange_rate_missing,
        -- A currency whose amount is 0 needs no rate for that measure.
        bool_or(rate is null and mrr_minor <> 0) as is_mrr_rate_missing,
        bool_or(rate is null and lifetime_value_minor <> 0)
            as is_lifetime_value_rate_missing,
        jsonb_object_agg(currency, mrr) as mrr_by_currency,
        jsonb_object_agg(currency, lifetime_value) as lifetime_value_by_currency,
        sum(mrr_major_exact * rate) as mrr_reporting_exact,
        sum(lifetime_value_major_exact * rate) as lifetime_value_reporting_exact,
        bool_or(mrr is null and is_used) as has_null_mrr
    from converted
    group by company_id
),

joined as (
    select
        primaries.company_id,
        primaries.account_id,
        primaries.customer_id as stripe_customer_id,
        coalesce(primary_subscriptions.subscription_id, latest_subscriptions.subscription_id)
            as subscription_id,
        coalesce(primary_subscriptions.status, latest_subscriptions.status)
            as subscription_status,
        coalesce(primary_subscriptions.plan_name, latest_subscriptions.plan_name)
            as plan_name,
        primaries.mrr_mode,
        primaries.reporting_currency,
        primaries.customer_count,
        case
            when per_company.used_currency_count = 1 then per_company.used_currency
            when per_company.used_currency_count > 1 then primaries.reporting_currency
            else coalesce(
                primary_subscriptions.currency,
                latest_subscriptions.currency,
                primaries.reporting_currency
            )
        end as currency,
        coalesce(per_company.used_currency_count, 0) > 1 as is_converted,
        coalesce(per_company.is_exchange_rate_missing, false)
            as is_exchange_rate_missing,
        coalesce(per_company.mrr_by_currency, '{}'::jsonb) as mrr_by_currency,
        coalesce(per_company.lifetime_value_by_currency, '{}'::jsonb)
            as lifetime_value_by_currency,
        case
            when per_company.is_mrr_rate_missing or per_company.has_null_mrr
                then null
            else round(
                round(coalesce(per_company.mrr_reporting_exact, 0), 12),
                {{ currency_exponent('primaries.reporting_currency') }}
            )
        end as mrr_reporting,
        case
            when per_company.is_lifetime_value_rate_missing then null
            else round(
                round(coalesce(per_company.lifetime_value_reporting_exact, 0), 12),
                {{ currency_exponent('primaries.reporting_currency') }}
            )
        end as lifetime_value_reporting,
        primaries.mrr_mode = 'manual'
            and coalesce(per_company.has_null_mrr, true) as is_mrr_missing,
        last_payments.last_payment_at
    from primaries
    left join per_company
        on primaries.company_id = per_company.company_id
    left join subscriptions as primary_subscriptions
        on primaries.account_id = primary_subscriptions.account_id
        and primaries.subscription_id = primary_subscriptions.subscription_id
    left join latest_subscriptions
        on primaries.company_id = latest_subscriptions.company_id
    left join last_payments
        on primaries.company_id = last_payments.company_id
),

final as (
    select
        joined.company_id,
        joined.account_id,
        joined.stripe_customer_id,
        joined.subscription_id,
        joined.subscription_status,
        joined.plan_name,
        joined.mrr_mode,
        joined.currency,
        -- Rounding again only gives a missing amount (0) its currency's scale.
        round(
            case
                when joined.is_mrr_missing then null
                when joined.is_converted then joined.mrr_reporting
                else coalesce(single_currency.mrr, 0)
            end,
            {{ currency_exponent('joined.currency') }}
        ) as mrr,
        round(
            case
                when joined.is_converted then joined.lifetime_value_reporting
                else coalesce(single_currency.lifetime_value, 0)
            end,
            {{ currency_exponent('joined.currency') }}
        ) as lifetime_value,
        joined.mrr_by_currency,
        joined.lifetime_value_by_currency,
        joined.reporting_currency,
        joined.mrr_reporting,
        joined.lifetime_value_reporting,
        joined.customer_count,
        joined.is_mrr_missing,
        joined.is_exchange_rate_missing,
        joined.is_converted,
        joined.last_payment_at
    from joined
    left join money as single_currency
        on joined.company_id = single_currency.company_id
        and joined.currency = single_currency.currency
)

select * from final
