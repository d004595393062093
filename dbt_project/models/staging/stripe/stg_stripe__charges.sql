with source as (
    select * from {{ source('stripe_raw', 'charges') }}
),

typed as (
    select
        account_id,
        id as charge_id,
        {{ json_id("data -> 'customer'") }} as customer_id,
        {{ json_id("data -> 'payment_intent'") }} as payment_intent_id,
        {{ json_id("data -> 'invoice'") }} as invoice_id,
        data ->> 'status' as status,
        lower(data ->> 'currency') as currency,
        data ->> 'failure_code' as failure_code,
        (data ->> 'amount')::bigint as amount_minor,
        -- Charges before amount_captured existed (and localstripe) report
        -- only `captured`: then the whole amount was captured.
        coalesce(
            (data ->> 'amount_captured')::bigint,
            case when (data ->> 'captured')::boolean
                then (data ->> 'amount')::bigint
                else 0
            end
        ) as amount_captured_minor,
        coalesce((data ->> 'amount_refunded')::bigint, 0)
            as amount_refunded_minor,
        coalesce((data ->> 'captured')::boolean, false) as is_captured,
        coalesce((data ->> 'paid')::boolean, false) as is_paid,
        coalesce((data ->> 'refunded')::boolean, false) as is_refunded,
        is_deleted,
        coalesce(created_at, {{ epoch_to_timestamp("data ->> 'created'") }})
            as created_at,
        observed_at
    from source
)

select * from typed
