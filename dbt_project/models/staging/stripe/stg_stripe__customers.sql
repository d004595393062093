with source as (
    select * from {{ source('stripe_raw', 'customers') }}
),

typed as (
    select
        account_id,
        id as customer_id,
        nullif(btrim(data ->> 'email'), '') as email,
        data ->> 'name' as customer_name,
        lower(data ->> 'currency') as currency,
        data,
        coalesce((data ->> 'delinquent')::boolean, false) as is_delinquent,
        is_deleted or coalesce((data ->> 'deleted')::boolean, false)
            as is_deleted,
        coalesce(created_at, {{ epoch_to_timestamp("data ->> 'created'") }})
            as created_at,
        observed_at
    from source
)

select * from typed
