-- One row per matching conflict, keyed by `conflict_key`:
--   customer_matches_several_companies: a Stripe customer matches more than
--     one company; it is assigned to `company_id` only;
--   customers_disagree_on_currency / customers_disagree_on_subscription_status:
--     a company's assigned customers bill in different currencies, or their
--     primary subscriptions are in different statuses.
with matches as (
    select * from {{ ref('int_halo__company_customer_matches') }}
),

customers as (
    select * from {{ ref('stripe_customers') }}
),

customer_conflicts as (
    select
        'customer_matches_several_companies' as reason,
        account_id,
        customer_id,
        max(company_id) filter (where is_assigned) as company_id,
        jsonb_agg(
            jsonb_build_object('company_id', company_id, 'match_kind', match_kind)
            order by match_rank, company_id
        ) as candidates
    from matches
    where matching_company_count > 1
    group by account_id, customer_id
),

assigned_customers as (
    select
        matches.company_id,
        customers.account_id,
        customers.customer_id,
        customers.currency,
        customers.subscription_status
    from matches
    inner join customers
        on matches.account_id = customers.account_id
        and matches.customer_id = customers.customer_id
    where matches.is_assigned
),

company_disagreements as (
    select
        'customers_disagree_on_currency' as reason,
        company_id,
        jsonb_agg(
            jsonb_build_object(
                'account_id', account_id,
                'customer_id', customer_id,
                'currency', currency
            )
            order by account_id, customer_id
        ) as candidates
    from assigned_customers
    where currency is not null
    group by company_id
    having count(distinct currency) > 1

    union all

    select
        'customers_disagree_on_subscription_status' as reason,
        company_id,
        jsonb_agg(
            jsonb_build_object(
                'account_id', account_id,
                'customer_id', customer_id,
                'subscription_status', subscription_status
            )
            order by account_id, customer_id
        ) as candidates
    from assigned_customers
    where subscription_status is not null
    group by company_id
    having count(distinct subscription_status) > 1
),

final as (
    select
        reason || ':' || account_id || ':' || customer_id as conflict_key,
        reason,
        account_id,
        customer_id,
        company_id,
        candidates
    from customer_conflicts

    union all

    select
        reason || ':' || company_id as conflict_key,
        reason,
        null as account_id,
        null as customer_id,
        company_id,
        candidates
    from company_disagreements
)

select * from final
