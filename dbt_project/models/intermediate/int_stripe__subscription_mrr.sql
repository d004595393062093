-- One row per subscription: its monthly amount after the discounts in
-- force, and whether it counts in MRR as of the `as_of` instant.
--
-- Only coupons with duration `forever` that are in force reduce MRR. Item
-- discounts apply first, each to its own item. Subscription discounts then
-- apply in array order to the items their coupon covers, which is every
-- item unless `applies_to.products` narrows it. `percent_off` multiplies.
-- `amount_off` comes off the period (invoice) amount, spread over the
-- covered items in proportion and floored at 0. It applies only in the
-- subscription's currency or through its `currency_options` entry.
-- Amounts stay exact until the marts round them.

with recursive subscriptions as (
    select * from {{ ref('stg_stripe__subscriptions') }}
),

item_amounts as (
    select * from {{ ref('int_stripe__subscription_item_amounts') }}
),

discounts as (
    select * from {{ ref('int_stripe__subscription_discounts') }}
),

effective_discounts as (
    select
        discounts.account_id,
        discounts.subscription_id,
        discounts.item_id,
        discounts.discount_position,
        discounts.percent_off,
        discounts.applies_to_products,
        case
            when discounts.percent_off is not null then null
            when discounts.coupon_currency = subscriptions.currency
                then discounts.amount_off_minor
            else (
                discounts.currency_options
                -> subscriptions.currency
                ->> 'amount_off'
            )::numeric
        end as amount_off_minor
    from discounts
    inner join subscriptions
        on discounts.account_id = subscriptions.account_id
        and discounts.subscription_id = subscriptions.subscription_id
    where discounts.is_resolved
        and discounts.duration = 'forever'
        and (discounts.discount_start_at is null
            or discounts.discount_start_at <= {{ as_of() }})
        and (discounts.discount_end_at is null
            or discounts.discount_end_at > {{ as_of() }})
),

ordered_discounts as (
    select
        *,
        row_number() over (
            partition by account_id, subscription_id, item_id
            order by discount_position
        ) as step
    from effective_discounts
    where percent_off is not null or amount_off_minor is not null
),

item_discounts as (
    select * from ordered_discounts where item_id is not null
),

subscription_discounts as (
    select * from ordered_discounts where item_id is null
),

-- Item discounts, one step per discount in each item's array order.
item_folds (
    account_id,
    subscription_id,
    item_id,
    product_id,
    monthly_factor_numerator,
    monthly_factor_denominator,
    step,
    amount_minor
) as (
    select
        account_id,
        subscription_id,
        item_id,
        product_id,
        monthly_factor_numerator,
        monthly_factor_denominator,
        0::bigint as step,
        period_amount_minor as amount_minor
    from item_amounts
    where is_counted

    union all

    select
        previous.account_id,
        previous.subscription_id,
        previous.item_id,
        previous.product_id,
        previous.monthly_factor_numerator,
        previous.monthly_factor_denominator,
        discount.step,
        case
            when discount.percent_off is not null
                then previous.amount_minor * (100 - discount.percent_off) / 100
            else greatest(previous.amount_minor - discount.amount_off_minor, 0)
        end as amount_minor
    from item_folds as previous
    inner join item_discounts as discount
        on previous.account_id = discount.account_id
        and previous.subscription_id = discount.subscription_id
        and previous.item_id = discount.item_id
        and discount.step = previous.step + 1
),

items_after_item_discounts as (
    select distinct on (account_id, subscription_id, item_id)
        *
    from item_folds
    order by account_id, subscription_id, item_id, step desc
),

-- Subscription discounts, one step per discount in array order. Each step
-- reads every item of the subscription, so `amount_off` can be spread over
-- the covered items by their share of the covered total.
subscription_folds (
    account_id,
    subscription_id,
    item_id,
    product_id,
    monthly_factor_numerator,
    monthly_factor_denominator,
    step,
    amount_minor
) as (
    select
        account_id,
        subscription_id,
        item_id,
        product_id,
        monthly_factor_numerator,
        monthly_factor_denominator,
        0::bigint as step,
        amount_minor
    from items_after_item_discounts

    union all

    select
        previous.account_id,
        previous.subscription_id,
        previous.item_id,
        previous.product_id,
        previous.monthly_factor_numerator,
        previous.monthly_factor_denominator,
        discount.step,
        case
            when not (
                discount.applies_to_products is null
                or discount.applies_to_products ? previous.product_id
            ) then previous.amount_minor
            when discount.percent_off is not null
                then previous.amount_minor * (100 - discount.percent_off) / 100
            -- A window function is the only way a recursive term may see
            -- the other items of its subscription.
            when sum(
                case
                    when discount.applies_to_products is null
                        or discount.applies_to_products ? previous.product_id
                        then previous.amount_minor
                    else 0
                end
            ) over subscription_items <= 0 then 0
            else previous.amount_minor
                * greatest(
                    sum(
                        case
                            when discount.applies_to_products is null
                                or discount.applies_to_products ? previous.product_id
                                then previous.amount_minor
                            else 0
                        end
                    ) over subscription_items
                    - discount.amount_off_minor,
                    0
                )
                / sum(
                    case
                        when discount.applies_to_products is null
                            or discount.applies_to_products ? previous.product_id
                            then previous.amount_minor
                        else 0
                    end
                ) over subscription_items
        end as amount_minor
    from subscription_folds as previous
    inner join subscription_discounts as discount
        on previous.account_id = discount.account_id
        and previous.subscription_id = discount.subscription_id
        and discount.step = previous.step + 1
    window subscription_items as (
        partition by previous.account_id, previous.subscription_id
    )
),

discounted_items as (
    select distinct on (account_id, subscription_id, item_id)
        *
    from subscription_folds
    order by account_id, subscription_id, item_id, step desc
),

monthly_totals as (
    select
        item_amounts.account_id,
        item_amounts.subscription_id,
        sum(
            item_amounts.period_amount_minor
            * item_amounts.monthly_factor_numerator
            / item_amounts.monthly_factor_denominator
        ) as undiscounted_monthly_amount_minor,
        sum(
            discounted_items.amount_minor
            * discounted_items.monthly_factor_numerator
            / discounted_items.monthly_factor_denominator
        ) as monthly_amount_minor,
        -- A tiered price listed without `expand[]=data.tiers`, for one,
        -- has no amount; it adds nothing and is flagged here.
        bool_or(item_amounts.period_amount_minor is null) as has_unknown_amount
    from item_amounts
    inner join discounted_items
        on item_amounts.account_id = discounted_items.account_id
        and item_amounts.subscription_id = discounted_items.subscription_id
        and item_amounts.item_id = discounted_items.item_id
    group by item_amounts.account_id, item_amounts.subscription_id
),

discount_counts as (
    select
        account_id,
        subscription_id,
        count(*) filter (where not is_resolved) as unresolved_discount_count
    from discounts
    group by account_id, subscription_id
),

states as (
    select
        subscriptions.account_id,
        subscriptions.subscription_id,
        subscriptions.customer_id,
        subscriptions.status,
        subscriptions.currency,
        subscriptions.pause_behavior,
        coalesce(monthly_totals.undiscounted_monthly_amount_minor, 0)
            as undiscounted_monthly_amount_minor,
        coalesce(monthly_totals.monthly_amount_minor, 0) as monthly_amount_minor,
        subscriptions.status in ('canceled', 'incomplete_expired')
            or subscriptions.ended_at <= {{ as_of() }}
            or subscriptions.cancel_at <= {{ as_of() }} as is_ended,
        subscriptions.pause_behavior is not null
            and (subscriptions.pause_resumes_at is null
                or subscriptions.pause_resumes_at > {{ as_of() }})
            as is_collection_paused,
        coalesce(discount_counts.unresolved_discount_count, 0) > 0
            as has_unresolved_discount,
        coalesce(monthly_totals.has_unknown_amount, false) as has_unknown_amount,
        subscriptions.created_at
    from subscriptions
    left join monthly_totals
        on subscriptions.account_id = monthly_totals.account_id
        and subscriptions.subscription_id = monthly_totals.subscription_id
    left join discount_counts
        on subscriptions.account_id = discount_counts.account_id
        and subscriptions.subscription_id = discount_counts.subscription_id
),

final as (
    select
        account_id,
        subscription_id,
        customer_id,
        status,
        currency,
        trim_scale(undiscounted_monthly_amount_minor)
            as undiscounted_monthly_amount_minor,
        trim_scale(monthly_amount_minor) as monthly_amount_minor,
        case
            when status in ('active', 'past_due')
                and not coalesce(is_ended, false)
                and not (
                    is_collection_paused
                    and pause_behavior in ('void', 'mark_uncollectible')
                )
                and (created_at is null or created_at <= {{ as_of() }})
                then trim_scale(monthly_amount_minor)
            else 0
        end as mrr_minor,
        coalesce(is_ended, false) as is_ended,
        is_collection_paused,
        has_unresolved_discount,
        has_unknown_amount
    from states
)

select * from final
