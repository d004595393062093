with source as (
    select * from {{ source('stripe_raw', 'refunds') }}
),

typed as (
    select
        account_id,
        id as refund_id,
        {{ json_id("data -> 'charge'") }} as charge_id,
        {{ json_id("data -> 'payment_intent'") }} as payment_intent_id,
        data ->> 'status' as status,
        lower(data ->> 'currency') as currency,
        (data ->> 'amount')::bigint as amount_minor,
        is_deleted,
        coalesce(created_at, {{ epoch_to_timestamp("data ->> 'created'") }})
            as created_at,
        observed_at
    from source
)

select * from typed
