with source as (
    select * from {{ source('stripe_raw', 'coupons') }}
),

typed as (
    select
        account_id,
        {{ coupon_columns('data') }},
        coalesce((data ->> 'valid')::boolean, true) as is_valid,
        is_deleted
    from source
)

select * from typed
