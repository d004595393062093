with source as (
    select * from {{ source('stripe_raw', 'products') }}
),

typed as (
    select
        account_id,
        id as product_id,
        data ->> 'name' as product_name,
        coalesce((data ->> 'active')::boolean, true) as is_active,
        is_deleted
    from source
)

select * from typed
