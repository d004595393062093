-- One row per subscription: its plan, contract term, renewal status and
-- dates as of the `as_of` instant.
--
-- The term-defining item is the licensed recurring item with the longest
-- interval (the smallest monthly factor). Period ends come from the items
-- (2025-03-31.basil and later) and fall back to the subscription's own
-- fields (older API versions).
with subscriptions as (
    select * from {{ ref('stg_stripe__subscriptions') }}
),

item_amounts as (
    select * from {{ ref('int_stripe__subscription_item_amounts') }}
),

products as (
    select * from {{ ref('stg_stripe__products') }}
),

term_items as (
    select distinct on (account_id, subscription_id)
        account_id,
        subscription_id,
        item_id,
        price_id,
        product_id,
        price_nickname,
        recurring_interval,
        recurring_interval_count,
        current_period_end_at
    from item_amounts
    where usage_type = 'licensed'
        and not is_deleted
        and recurring_interval is not null
    order by
        account_id,
        subscription_id,
        monthly_factor_numerator::numeric / monthly_factor_denominator,
        item_position
),

period_ends as (
    select
        account_id,
        subscription_id,
        min(current_period_end_at) as earliest_period_end_at
    from item_amounts
    where not is_deleted
    group by account_id, subscription_id
),

joined as (
    select
        subscriptions.account_id,
        subscriptions.subscription_id,
        subscriptions.customer_id,
        subscriptions.status,
        term_items.item_id as term_item_id,
        term_items.price_id,
        coalesce(products.product_name, term_items.price_nickname, term_items.price_id)
            as plan_name,
        term_items.recurring_interval,
        term_items.recurring_interval_count,
        coalesce(term_items.current_period_end_at, subscriptions.current_period_end_at)
            as term_period_end_at,
        coalesce(period_ends.earliest_period_end_at, subscriptions.current_period_end_at)
            as earliest_period_end_at,
        subscriptions.trial_end_at,
        subscriptions.cancel_at,
        subscriptions.pause_resumes_at,
        subscriptions.is_cancel_at_period_end,
        subscriptions.status in ('canceled', 'incomplete_expired')
            or coalesce(subscriptions.ended_at <= {{ as_of() }}, false)
            or coalesce(subscriptions.cancel_at <= {{ as_of() }}, false)
            as is_ended,
        subscriptions.pause_behavior is not null
            and (subscriptions.pause_resumes_at is null
                or subscriptions.pause_resumes_at > {{ as_of() }})
            as is_collection_paused
    from subscriptions
    left join term_items
        on subscriptions.account_id = term_items.account_id
        and subscriptions.subscription_id = term_items.subscription_id
    left join period_ends
        on subscriptions.account_id = period_ends.account_id
        and subscriptions.subscription_id = period_ends.subscription_id
    left join products
        on term_items.account_id = products.account_id
        and term_items.product_id = products.product_id
),

statuses as (
    select
        *,
        case
            when is_ended then 'ended'
            when status = 'unpaid' then 'lapsed'
            when status = 'incomplete' then 'pending'
            when status = 'paused' or is_collection_paused then 'paused'
            when status = 'trialing' then 'trialing'
            when is_cancel_at_period_end or cancel_at > {{ as_of() }}
                then 'set_to_cancel'
            when status in ('active', 'past_due') then 'renewing'
            else 'none'
        end as renewal_status,
        case
            when recurring_interval = 'month' and recurring_interval_count = 1
                then 'monthly'
            when recurring_interval = 'month' and recurring_interval_count = 3
                then 'quarterly'
            when recurring_interval = 'month' and recurring_interval_count = 6
                then 'semiannual'
            when (recurring_interval = 'month' and recurring_interval_count = 12)
                or (recurring_interval = 'year' and recurring_interval_count = 1)
                then 'annual'
            when recurring_interval = 'year'
                then (12 * recurring_interval_count)::text || ' months'
            when recurring_interval in ('month', 'week', 'day')
                then recurring_interval_count::text || ' ' || recurring_interval
                    || case when recurring_interval_count = 1 then '' else 's' end
        end as contract_term
    from joined
),

final as (
    select
        account_id,
        subscription_id,
        customer_id,
        status,
        renewal_status,
        plan_name,
        price_id,
        term_item_id,
        contract_term,
        case renewal_status
            when 'trialing' then trial_end_at
            when 'set_to_cancel' then coalesce(cancel_at, earliest_period_end_at)
            when 'renewing' then term_period_end_at
            when 'paused' then pause_resumes_at
        end as renewal_at,
        case renewal_status
            when 'trialing' then trial_end_at
            when 'renewing' then earliest_period_end_at
            when 'paused' then pause_resumes_at
        end as next_billing_at,
        is_ended,
        is_collection_paused,
        is_cancel_at_period_end
    from statuses
)

select * from final
