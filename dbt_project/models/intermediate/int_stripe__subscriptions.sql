-- One row per subscription: its MRR and its renewal fields side by side.
-- The marts pick a primary subscription from these columns: non-ended
-- first, then the largest undiscounted monthly amount, then the earliest
-- renewal date, then the subscription id.
--
-- A subscription created after `as_of` did not exist yet at that instant,
-- so it is left out: a past as_of shows neither its MRR nor its renewal.
with subscription_mrr as (
    select * from {{ ref('int_stripe__subscription_mrr') }}
),

subscription_terms as (
    select * from {{ ref('int_stripe__subscription_terms') }}
),

subscriptions as (
    select * from {{ ref('stg_stripe__subscriptions') }}
),

final as (
    select
        subscription_mrr.account_id,
        subscription_mrr.subscription_id,
        subscription_mrr.customer_id,
        subscription_mrr.status,
        subscription_terms.renewal_status,
        subscription_terms.plan_name,
        subscription_terms.price_id,
        subscription_terms.contract_term,
        subscription_mrr.currency,
        subscription_mrr.undiscounted_monthly_amount_minor,
        subscription_mrr.monthly_amount_minor,
        subscription_mrr.mrr_minor,
        subscription_mrr.is_ended,
        subscription_mrr.is_collection_paused,
        subscription_mrr.has_unresolved_discount,
        subscription_mrr.has_unknown_amount,
        subscription_terms.is_cancel_at_period_end,
        subscription_terms.renewal_at,
        subscription_terms.next_billing_at,
        subscriptions.created_at
    from subscription_mrr
    inner join subscription_terms
        on subscription_mrr.account_id = subscription_terms.account_id
        and subscription_mrr.subscription_id = subscription_terms.subscription_id
    inner join subscriptions
        on subscription_mrr.account_id = subscriptions.account_id
        and subscription_mrr.subscription_id = subscriptions.subscription_id
    where subscriptions.created_at is null
        or subscriptions.created_at <= {{ as_of() }}
)

select * from final
