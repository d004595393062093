-- One row per discount attached to a subscription or to one of its items,
-- in array order, whatever the API shape:
--   * `discount` on the subscription (before 2025-03-31.basil),
--   * `discounts` on the subscription and on items (ids or expanded objects),
--   * a discount whose coupon sits under `source.coupon` (2025-09-30.clover
--     and later) rather than `coupon`.
-- A coupon given as an id is read from the coupons table. A discount given
-- only as an id resolves only when it is the subscription's legacy
-- `discount`. Otherwise `is_resolved` is false and it changes no amount.
-- NOTE: no table stores discount objects. Since 2025-03-31.basil Stripe
-- lists `discounts` as ids unless the request expands them
-- (`expand[]=data.discounts`, `expand[]=data.items.data.discounts`), so
-- an unexpanded forever coupon is flagged but does not reduce MRR.
with subscriptions as (
    select * from {{ ref('stg_stripe__subscriptions') }}
),

items as (
    select * from {{ ref('stg_stripe__subscription_items') }}
),

coupons as (
    select * from {{ ref('stg_stripe__coupons') }}
),

subscription_entries as (
    select
        subscriptions.account_id,
        subscriptions.subscription_id,
        null::text as item_id,
        entry.position as discount_position,
        entry.value as entry,
        subscriptions.legacy_discount
    from subscriptions
    cross join lateral jsonb_array_elements(subscriptions.discounts)
        with ordinality as entry (value, position)

    union all

    -- The legacy single discount, when no `discounts` array lists it.
    select
        account_id,
        subscription_id,
        null::text as item_id,
        1 as discount_position,
        legacy_discount as entry,
        legacy_discount
    from subscriptions
    where legacy_discount is not null
        and jsonb_array_length(discounts) = 0
),

item_entries as (
    select
        items.account_id,
        items.subscription_id,
        items.item_id,
        entry.position as discount_position,
        entry.value as entry,
        null::jsonb as legacy_discount
    from items
    cross join lateral jsonb_array_elements(items.discounts)
        with ordinality as entry (value, position)
),

entries as (
    select * from subscription_entries
    union all
    select * from item_entries
),

discount_objects as (
    select
        account_id,
        subscription_id,
        item_id,
        discount_position,
        {{ json_id('entry') }} as discount_id,
        case
            when jsonb_typeof(entry) = 'object' then entry
            when entry #>> '{}' = legacy_discount ->> 'id' then legacy_discount
        end as discount
    from entries
),

coupon_references as (
    select
        *,
        coalesce(
            {{ json_value("discount -> 'coupon'") }},
            {{ json_value("discount -> 'source' -> 'coupon'") }}
        ) as coupon_reference
    from discount_objects
),

embedded_coupons as (
    select
        coupon_references.*,
        {{ json_id('coupon_reference') }} as referenced_coupon_id,
        {{ coupon_columns("case when jsonb_typeof(coupon_reference) = 'object' then coupon_reference end") }}
    from coupon_references
),

final as (
    select
        embedded_coupons.account_id,
        embedded_coupons.subscription_id,
        embedded_coupons.item_id,
        embedded_coupons.discount_position,
        embedded_coupons.discount_id,
        embedded_coupons.referenced_coupon_id as coupon_id,
        coalesce(embedded_coupons.duration, coupons.duration) as duration,
        coalesce(embedded_coupons.percent_off, coupons.percent_off)
            as percent_off,
        coalesce(embedded_coupons.amount_off_minor, coupons.amount_off_minor)
            as amount_off_minor,
        coalesce(embedded_coupons.coupon_currency, coupons.coupon_currency)
            as coupon_currency,
        coalesce(embedded_coupons.currency_options, coupons.currency_options)
            as currency_options,
        coalesce(
            embedded_coupons.applies_to_products, coupons.applies_to_products
        ) as applies_to_products,
        embedded_coupons.discount is not null
            and coalesce(embedded_coupons.duration, coupons.duration) is not null
            as is_resolved,
        {{ epoch_to_timestamp("embedded_coupons.discount ->> 'start'") }}
            as discount_start_at,
        {{ epoch_to_timestamp("embedded_coupons.discount ->> 'end'") }}
            as discount_end_at
    from embedded_coupons
    left join coupons
        on embedded_coupons.account_id = coupons.account_id
        and embedded_coupons.referenced_coupon_id = coupons.coupon_id
)

select * from final
