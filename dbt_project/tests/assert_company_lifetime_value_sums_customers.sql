-- Money identity: a company's lifetime value in each currency is the exact
-- sum of its assigned customers' lifetime values in that currency.
with company_money as (
    select * from {{ ref('int_halo__company_money') }}
),

matches as (
    select * from {{ ref('int_halo__company_customer_matches') }}
    where is_assigned
),

customer_money as (
    select * from {{ ref('int_stripe__customer_money') }}
),

customer_sums as (
    select
        matches.company_id,
        customer_money.currency,
        sum(customer_money.lifetime_value_minor) as lifetime_value_minor
    from matches
    inner join customer_money
        on matches.account_id = customer_money.account_id
        and matches.customer_id = customer_money.customer_id
    group by matches.company_id, customer_money.currency
),

final as (
    select
        coalesce(company_money.company_id, customer_sums.company_id) as company_id,
        coalesce(company_money.currency, customer_sums.currency) as currency,
        company_money.lifetime_value_minor as company_minor,
        customer_sums.lifetime_value_minor as customers_minor
    from company_money
    full outer join customer_sums
        on company_money.company_id = customer_sums.company_id
        and company_money.currency = customer_sums.currency
    where coalesce(company_money.lifetime_value_minor, 0)
        <> coalesce(customer_sums.lifetime_value_minor, 0)
)

select * from final
