with source as (
    select * from {{ source('stripe_raw', 'prices') }}
),

typed as (
    select
        account_id,
        {{ normalized_price_columns('data', 'null::jsonb') }},
        data ->> 'type' as price_type,
        coalesce((data ->> 'active')::boolean, true) as is_active,
        is_deleted
    from source
)

select * from typed
