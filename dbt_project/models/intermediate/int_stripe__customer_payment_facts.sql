-- One row per customer and account that has at least one charge: the
-- payment facts behind the last payment date and the payment health
-- signal, as of the `as_of` instant.
with payments as (
    select * from {{ ref('int_stripe__payments') }}
),

charges as (
    select *
    from payments
    where payment_type = 'charge'
        and customer_id is not null
        and created_at <= {{ as_of() }}
),

latest_attempts as (
    select distinct on (account_id, customer_id)
        account_id,
        customer_id,
        status as latest_attempt_status,
        created_at as latest_attempt_at
    from charges
    order by account_id, customer_id, created_at desc, charge_id desc
),

counts as (
    select
        account_id,
        customer_id,
        count(*) as charge_count,
        count(*) filter (where status = 'succeeded') as succeeded_charge_count,
        count(*) filter (
            where status = 'failed'
                and created_at > {{ as_of() }}
                    - interval '{{ var("payment_health_window_days") | int }} days'
        ) as failed_charges_in_window,
        -- The last payment: succeeded, captured, positive, not fully refunded.
        max(created_at) filter (
            where status = 'succeeded'
                and is_captured
                and amount_captured_minor > 0
                and not is_fully_refunded
        ) as last_payment_at
    from charges
    group by account_id, customer_id
),

final as (
    select
        counts.account_id,
        counts.customer_id,
        counts.charge_count,
        counts.succeeded_charge_count,
        counts.failed_charges_in_window,
        latest_attempts.latest_attempt_status,
        counts.last_payment_at,
        latest_attempts.latest_attempt_at
    from counts
    inner join latest_attempts
        on counts.account_id = latest_attempts.account_id
        and counts.customer_id = latest_attempts.customer_id
)

select * from final
