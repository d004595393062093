-- One row per company and currency: the company's MRR in its account's
-- MRR mode and its lifetime value, summed exactly over its assigned
-- customers and rounded half-up to major units once, here.
--
-- Mode `manual` reads the company's `mrr` trait, in major units of the
-- reporting currency; a missing or non-numeric trait leaves MRR null.
with matches as (
    select * from {{ ref('int_halo__company_customer_matches') }}
    where is_assigned
),

primaries as (
    select * from {{ ref('int_halo__company_primaries') }}
),

customer_money as (
    select * from {{ ref('int_stripe__customer_money') }}
),

companies as (
    select * from {{ ref('stg_halo__companies') }}
),

stripe_amounts as (
    select
        primaries.company_id,
        customer_money.currency,
        sum(
            case primaries.mrr_mode
                when 'stripe_subscription' then customer_money.subscription_mrr_minor
                when 'previous_month_charges' then customer_money.previous_month_net_minor
                else 0
            end
        ) as mrr_minor,
        sum(customer_money.lifetime_value_minor) as lifetime_value_minor
    from primaries
    inner join matches
        on primaries.company_id = matches.company_id
    inner join customer_money
        on matches.account_id = customer_money.account_id
        and matches.customer_id = customer_money.customer_id
    group by primaries.company_id, customer_money.currency
),

manual_amounts as (
    select
        primaries.company_id,
        primaries.reporting_currency as currency,
        case when companies.traits ->> 'mrr' ~ '^\s*-?[0-9]+(\.[0-9]+)?\s*$'
            then (companies.traits ->> 'mrr')::numeric
                * power(10::numeric, {{ currency_exponent('primaries.reporting_currency') }})
        end as mrr_minor,
        0::numeric as lifetime_value_minor
    from primaries
    inner join companies
        on primaries.company_id = companies.company_id
    where primaries.mrr_mode = 'manual'
),

amounts as (
    select
        company_id,
        currency,
        mrr_minor,
        lifetime_value_minor,
        false as is_manual
    from stripe_amounts
    union all
    select
        company_id,
        currency,
        mrr_minor,
        lifetime_value_minor,
        true as is_manual
    from manual_amounts
),

combined as (
    select
        company_id,
        currency,
        -- Manual MRR replaces the Stripe-derived one; null stays null.
        case
            when bool_or(is_manual)
                then sum(mrr_minor) filter (where is_manual)
            else sum(mrr_minor)
        end as mrr_minor,
        sum(lifetime_value_minor) as lifetime_value_minor,
        bool_or(is_manual) as is_manual
    from amounts
    group by company_id, currency
),

final as (
    select
        combined.company_id,
        combined.currency,
        trim_scale(combined.mrr_minor) as mrr_minor,
        trim_scale(combined.lifetime_value_minor) as lifetime_value_minor,
        {{ minor_to_major('combined.mrr_minor', 'combined.currency') }} as mrr,
        {{ minor_to_major('combined.lifetime_value_minor', 'combined.currency') }}
            as lifetime_value,
        combined.is_manual
    from combined
)

select * from final
