with source as (
    select * from {{ source('stripe_raw', 'subscriptions') }}
),

typed as (
    select
        account_id,
        id as subscription_id,
        {{ json_id("data -> 'customer'") }} as customer_id,
        data ->> 'status' as status,
        lower(coalesce(
            data ->> 'currency',
            data -> 'items' -> 'data' -> 0 -> 'price' ->> 'currency',
            data -> 'items' -> 'data' -> 0 -> 'plan' ->> 'currency'
        )) as currency,
        data -> 'pause_collection' ->> 'behavior' as pause_behavior,
        {{ json_object("data -> 'discount'") }} as legacy_discount,
        coalesce({{ json_value("data -> 'discounts'") }}, '[]'::jsonb)
            as discounts,
        coalesce(
            {{ json_value("data -> 'items' -> 'data'") }}, '[]'::jsonb
        ) as items,
        data,
        coalesce((data ->> 'cancel_at_period_end')::boolean, false)
            as is_cancel_at_period_end,
        is_deleted,
        coalesce(created_at, {{ epoch_to_timestamp("data ->> 'created'") }})
            as created_at,
        {{ epoch_to_timestamp("data ->> 'start_date'") }} as started_at,
        {{ epoch_to_timestamp("data ->> 'current_period_start'") }}
            as current_period_start_at,
        {{ epoch_to_timestamp("data ->> 'current_period_end'") }}
            as current_period_end_at,
        {{ epoch_to_timestamp("data ->> 'trial_start'") }} as trial_start_at,
        {{ epoch_to_timestamp("data ->> 'trial_end'") }} as trial_end_at,
        {{ epoch_to_timestamp("data ->> 'cancel_at'") }} as cancel_at,
        {{ epoch_to_timestamp("data ->> 'canceled_at'") }} as canceled_at,
        {{ epoch_to_timestamp("data ->> 'ended_at'") }} as ended_at,
        {{ epoch_to_timestamp("data -> 'pause_collection' ->> 'resumes_at'") }}
            as pause_resumes_at,
        observed_at
    from source
)

select * from typed
