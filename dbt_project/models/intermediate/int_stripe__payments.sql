-- One row per charge and one per refund, as signed money movements of a
-- customer, so lifetime value and the previous month's net read one list.
-- Charges reach their customer through `charge.customer` (2025-03-31.basil
-- removed `invoice.charge`); refunds reach it through their charge.
--
-- A charge's `amount_refunded` is its current total. For a past
-- `as_of`, the succeeded refunds created after it are added back, so
-- lifetime value and the last payment date re-derive that instant's state.
with charges as (
    select * from {{ ref('stg_stripe__charges') }}
),

refunds as (
    select * from {{ ref('stg_stripe__refunds') }}
),

later_refunds as (
    select
        account_id,
        charge_id,
        sum(amount_minor) as amount_minor
    from refunds
    where status = 'succeeded'
        and created_at > {{ as_of() }}
        and charge_id is not null
    group by account_id, charge_id
),

charges_as_of as (
    select
        charges.*,
        greatest(
            charges.amount_refunded_minor
                - coalesce(later_refunds.amount_minor, 0),
            0
        ) as amount_refunded_as_of_minor
    from charges
    left join later_refunds
        on charges.account_id = later_refunds.account_id
        and charges.charge_id = later_refunds.charge_id
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
        amount_refunded_as_of_minor as amount_refunded_minor,
        is_captured,
        status = 'succeeded'
            and amount_captured_minor > 0
            and amount_refunded_as_of_minor >= amount_captured_minor
            as is_fully_refunded,
        created_at
    from charges_as_of
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
