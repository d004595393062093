-- One row per customer, account and currency: the exact minor-unit amounts
-- each MRR mode and lifetime value add up, as of the `as_of` instant.
--
-- * subscription_mrr_minor: the counting subscriptions' MRR.
-- * previous_month_net_minor: succeeded, captured charges created in the
--   previous calendar month (UTC) of as_of, by `amount_captured`, minus
--   succeeded refunds created in that month whatever month their charge was
--   from. It may be negative.
-- * lifetime_value_minor: `amount_captured - amount_refunded` over
--   succeeded charges created up to as_of.
with payments as (
    select * from {{ ref('int_stripe__payments') }}
),

subscription_mrr as (
    select * from {{ ref('int_stripe__subscription_mrr') }}
),

bounds as (
    select
        date_trunc('month', {{ as_of() }} at time zone 'UTC')
            at time zone 'UTC' as month_end_at,
        (date_trunc('month', {{ as_of() }} at time zone 'UTC') - interval '1 month')
            at time zone 'UTC' as month_start_at
),

payment_amounts as (
    select
        payments.account_id,
        payments.customer_id,
        payments.currency,
        case
            when payments.payment_type = 'charge'
                and payments.status = 'succeeded'
                and payments.created_at <= {{ as_of() }}
                then payments.amount_captured_minor - payments.amount_refunded_minor
            else 0
        end as lifetime_value_minor,
        case
            when payments.payment_type = 'charge'
                and payments.status = 'succeeded'
                and payments.created_at >= bounds.month_start_at
                and payments.created_at < bounds.month_end_at
                then payments.amount_captured_minor
            when payments.payment_type = 'refund'
                and payments.status = 'succeeded'
                and payments.created_at >= bounds.month_start_at
                and payments.created_at < bounds.month_end_at
                then -payments.amount_minor
            else 0
        end as previous_month_net_minor,
        0::numeric as subscription_mrr_minor
    from payments
    cross join bounds
    where payments.customer_id is not null
        and payments.currency is not null
),

subscription_amounts as (
    select
        account_id,
        customer_id,
        currency,
        0::bigint as lifetime_value_minor,
        0::bigint as previous_month_net_minor,
        mrr_minor as subscription_mrr_minor
    from subscription_mrr
    where customer_id is not null
        and currency is not null
        and mrr_minor <> 0
),

amounts as (
    select * from payment_amounts
    union all
    select * from subscription_amounts
),

final as (
    select
        account_id,
        customer_id,
        currency,
        trim_scale(sum(subscription_mrr_minor)) as subscription_mrr_minor,
        sum(previous_month_net_minor) as previous_month_net_minor,
        sum(lifetime_value_minor) as lifetime_value_minor
    from amounts
    group by account_id, customer_id, currency
)

select * from final
