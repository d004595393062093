-- One row per company with at least one assigned Stripe customer: the
-- payment health signal and the facts behind it, as of `as_of`.
--
-- A company is scored only when one of its subscriptions has a status in
-- its account's `health_statuses`. Levels, first match wins:
--   failing: a non-ended subscription is past_due or unpaid, a matched
--            customer is delinquent (the company being scored), or the
--            latest charge attempt failed.
--   at_risk: a failed charge in the window, or collection is paused.
--   healthy: at least one succeeded charge.
--   unknown: no charge history.
-- Scores: healthy 100, at_risk 50, failing 0, unknown null.
with primaries as (
    select * from {{ ref('int_halo__company_primaries') }}
),

matches as (
    select * from {{ ref('int_halo__company_customer_matches') }}
    where is_assigned
),

customers as (
    select * from {{ ref('stg_stripe__customers') }}
),

subscriptions as (
    select * from {{ ref('int_stripe__subscriptions') }}
),

payment_facts as (
    select * from {{ ref('int_stripe__customer_payment_facts') }}
),

subscription_facts as (
    select
        primaries.company_id,
        bool_or(primaries.health_statuses ? subscriptions.status) as is_scored,
        bool_or(
            not subscriptions.is_ended
            and subscriptions.status in ('past_due', 'unpaid')
        ) as has_past_due_subscription,
        bool_or(
            not subscriptions.is_ended and subscriptions.is_collection_paused
        ) as is_collection_paused
    from primaries
    inner join matches
        on primaries.company_id = matches.company_id
    inner join subscriptions
        on matches.account_id = subscriptions.account_id
        and matches.customer_id = subscriptions.customer_id
    group by primaries.company_id
),

customer_facts as (
    select
        matches.company_id,
        bool_or(customers.is_delinquent) as is_delinquent
    from matches
    inner join customers
        on matches.account_id = customers.account_id
        and matches.customer_id = customers.customer_id
    group by matches.company_id
),

charge_totals as (
    select
        matches.company_id,
        sum(payment_facts.charge_count) as charge_count,
        sum(payment_facts.succeeded_charge_count) as succeeded_charge_count,
        sum(payment_facts.failed_charges_in_window) as failed_charges_in_window
    from matches
    inner join payment_facts
        on matches.account_id = payment_facts.account_id
        and matches.customer_id = payment_facts.customer_id
    group by matches.company_id
),

latest_attempts as (
    select distinct on (matches.company_id)
        matches.company_id,
        payment_facts.latest_attempt_status,
        payment_facts.latest_attempt_at
    from matches
    inner join payment_facts
        on matches.account_id = payment_facts.account_id
        and matches.customer_id = payment_facts.customer_id
    order by
        matches.company_id,
        payment_facts.latest_attempt_at desc,
        payment_facts.customer_id desc
),

facts as (
    select
        primaries.company_id,
        primaries.account_id,
        coalesce(subscription_facts.is_scored, false) as is_scored,
        coalesce(subscription_facts.has_past_due_subscription, false)
            as has_past_due_subscription,
        coalesce(subscription_facts.is_collection_paused, false)
            as is_collection_paused,
        coalesce(customer_facts.is_delinquent, false) as is_delinquent,
        coalesce(charge_totals.charge_count, 0) as charge_count,
        coalesce(charge_totals.succeeded_charge_count, 0)
            as succeeded_charge_count,
        coalesce(charge_totals.failed_charges_in_window, 0)
            as failed_charges_in_window,
        latest_attempts.latest_attempt_status,
        latest_attempts.latest_attempt_at
    from primaries
    left join subscription_facts
        on primaries.company_id = subscription_facts.company_id
    left join customer_facts
        on primaries.company_id = customer_facts.company_id
    left join charge_totals
        on primaries.company_id = charge_totals.company_id
    left join latest_attempts
        on primaries.company_id = latest_attempts.company_id
),

signals as (
    select
        *,
        case
            when not is_scored then null
            when has_past_due_subscription
                or is_delinquent
                or latest_attempt_status = 'failed'
                then 'failing'
            when failed_charges_in_window > 0 or is_collection_paused
                then 'at_risk'
            when succeeded_charge_count > 0 then 'healthy'
            else 'unknown'
        end as payment_signal
    from facts
),

final as (
    select
        company_id,
        account_id,
        is_scored,
        payment_signal,
        case payment_signal
            when 'healthy' then 100
            when 'at_risk' then 50
            when 'failing' then 0
        end as payment_score,
        failed_charges_in_window,
        succeeded_charge_count,
        charge_count,
        latest_attempt_status,
        is_delinquent,
        has_past_due_subscription,
        is_collection_paused,
        latest_attempt_at
    from signals
)

select * from final
