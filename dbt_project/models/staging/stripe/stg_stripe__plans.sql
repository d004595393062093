-- Legacy plans in the price shape (see the normalized_price_columns macro),
-- so consumers read prices and plans alike.
with source as (
    select * from {{ source('stripe_raw', 'plans') }}
),

typed as (
    select
        account_id,
        {{ normalized_price_columns('null::jsonb', 'data') }},
        'recurring' as price_type,
        coalesce((data ->> 'active')::boolean, true) as is_active,
        is_deleted
    from source
)

select * from typed
