-- Subscription items unnested from `items.data` of each subscription.
-- Item-level periods (API 2025-03-31.basil and later) are kept apart from
-- the subscription-level ones that older versions send. Consumers read the
-- item first and fall back to the subscription.
with source as (
    select * from {{ source('stripe_raw', 'subscriptions') }}
),

items as (
    select
        source.account_id,
        source.id as subscription_id,
        item.position as item_position,
        item.object as item,
        {{ json_object("item.object -> 'price'") }} as price_object,
        {{ json_object("item.object -> 'plan'") }} as plan_object
    from source
    cross join lateral jsonb_array_elements(
        coalesce({{ json_value("source.data -> 'items' -> 'data'") }}, '[]'::jsonb)
    ) with ordinality as item (object, position)
),

typed as (
    select
        account_id,
        subscription_id,
        item ->> 'id' as item_id,
        item_position,
        {{ normalized_price_columns('price_object', 'plan_object') }},
        case when jsonb_typeof(item -> 'price') = 'string'
            then item ->> 'price'
        end as price_reference,
        (item ->> 'quantity')::numeric as quantity,
        coalesce({{ json_value("item -> 'discounts'") }}, '[]'::jsonb)
            as discounts,
        coalesce((item ->> 'deleted')::boolean, false) as is_deleted,
        {{ epoch_to_timestamp("item ->> 'current_period_start'") }}
            as current_period_start_at,
        {{ epoch_to_timestamp("item ->> 'current_period_end'") }}
            as current_period_end_at
    from items
)

select * from typed
