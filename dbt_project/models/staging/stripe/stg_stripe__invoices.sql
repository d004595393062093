with source as (
    select * from {{ source('stripe_raw', 'invoices') }}
),

typed as (
    select
        account_id,
        id as invoice_id,
        {{ json_id("data -> 'customer'") }} as customer_id,
        -- 2025-03-31.basil moved the subscription under `parent`.
        coalesce(
            {{ json_id("data -> 'parent' -> 'subscription_details' -> 'subscription'") }},
            {{ json_id("data -> 'subscription'") }}
        ) as subscription_id,
        data ->> 'status' as status,
        data ->> 'billing_reason' as billing_reason,
        lower(data ->> 'currency') as currency,
        (data ->> 'amount_due')::bigint as amount_due_minor,
        (data ->> 'amount_paid')::bigint as amount_paid_minor,
        (data ->> 'total')::bigint as total_minor,
        is_deleted,
        coalesce(created_at, {{ epoch_to_timestamp("data ->> 'created'") }})
            as created_at,
        {{ epoch_to_timestamp("data ->> 'period_start'") }} as period_start_at,
        {{ epoch_to_timestamp("data ->> 'period_end'") }} as period_end_at,
        {{ epoch_to_timestamp("data ->> 'next_payment_attempt'") }}
            as next_payment_attempt_at,
        observed_at
    from source
)

select * from typed
