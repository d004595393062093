-- One row per charge and one per refund, as signed money movements of a
-- customer, so lifetime value and the previous month's net read one list.
-- Charges reach their customer through `charge.customer` (2025-03-31.basil
-- removed `invoice.charge`); refunds reach it through their charge.
with charges as (
    select * from {{ ref('stg_stripe__charges') }}
),

refunds as (
    select * from {{ ref('stg_stripe__refunds') }}
),

charge_movements as (
    select
        account_id,
        charge_id as payment_id,
        charge_id,
        customer_id,
        'charge' as payment_type,
        status,
        currency,
        amount_minor,
        amount_captured_minor,
        amount_refunded_minor,
        is_captured,
        status = 'succeeded'
            and amount_captured_minor > 0
            and amount_refunded_minor >= amount_captured_minor
            as is_fully_refunded,
        created_at
    from charges
),

refund_movements as (
    select
        refunds.account_id,
        refunds.refund_id as payment_id,
        refunds.charge_id,
        charges.customer_id,
        'refund' as payment_type,
        refunds.status,
        coalesce(refunds.currency, charges.currency) as currency,
        refunds.amount_minor,
        0::bigint as amount_captured_minor,
        0::bigint as amount_refunded_minor,
        false as is_captured,
        false as is_fully_refunded,
        refunds.created_at
    from refunds
    left join charges
        on refunds.account_id = charges.account_id
        and refunds.charge_id = charges.charge_id
),

final as (
    select * from charge_movements
    union all
    select * from refund_movements
)

select * from final
