-- One row per Stripe customer and account, deleted customers included
-- because they keep their history. `currency` is that of the customer's
-- primary subscription, else the customer's own, else the one its payments
-- use. `mrr` and `lifetime_value` are in that currency, in major units, and
-- the `_by_currency` objects hold every currency. `mrr` follows the
-- account's MRR mode and is null in mode `manual`, which sets MRR per
-- company.
with customers as (
    select * from {{ ref('stg_stripe__customers') }}
),

settings as (
    select * from {{ ref('stg_halo__integration_settings') }}
),

matches as (
    select * from {{ ref('int_halo__company_customer_matches') }}
    where is_assigned
),

customer_money as (
    select * from {{ ref('int_stripe__customer_money') }}
),

payment_facts as (
    select * from {{ ref('int_stripe__customer_payment_facts') }}
),

subscriptions as (
    select * from {{ ref('int_stripe__subscriptions') }}
),

primary_subscriptions as (
    select distinct on (account_id, customer_id)
        account_id,
        customer_id,
        subscription_id,
        status,
        plan_name,
        currency
    from subscriptions
    order by
        account_id,
        customer_id,
        is_ended,
        undiscounted_monthly_amount_minor desc,
        renewal_at nulls last,
        created_at desc nulls last,
        subscription_id
),

money as (
    select
        customer_money.account_id,
        customer_money.customer_id,
        customer_money.currency,
        case coalesce(settings.mrr_mode, 'stripe_subscription')
            when 'stripe_subscription' then customer_money.subscription_mrr_minor
            when 'previous_month_charges' then customer_money.previous_month_net_minor
        end as mrr_minor,
        customer_money.lifetime_value_minor
    from customer_money
    left join settings
        on customer_money.account_id = settings.account_id
),

money_rounded as (
    select
        account_id,
        customer_id,
        currency,
        {{ minor_to_major('mrr_minor', 'currency') }} as mrr,
        {{ minor_to_major('lifetime_value_minor', 'currency') }} as lifetime_value
    from money
),

money_objects as (
    select
        account_id,
        customer_id,
        min(currency) as any_currency,
        jsonb_object_agg(currency, mrr) as mrr_by_currency,
        jsonb_object_agg(currency, lifetime_value) as lifetime_value_by_currency
    from money_rounded
    group by account_id, customer_id
),

display_values as (
    select
        customers.account_id,
        customers.customer_id,
        jsonb_object_agg(
            field.name,
            customers.data #> string_to_array(field.name, '.')
        ) as display_fields
    from customers
    inner join settings
        on customers.account_id = settings.account_id
    cross join lateral jsonb_array_elements_text(settings.display_fields)
        as field (name)
    group by customers.account_id, customers.customer_id
),

joined as (
    select
        customers.account_id,
        customers.customer_id,
        customers.email,
        customers.customer_name,
        matches.company_id,
        customers.is_deleted,
        primary_subscriptions.subscription_id,
        primary_subscriptions.status as subscription_status,
        primary_subscriptions.plan_name,
        coalesce(settings.mrr_mode, 'stripe_subscription') as mrr_mode,
        coalesce(
            primary_subscriptions.currency,
            customers.currency,
            money_objects.any_currency
        ) as currency,
        money_objects.mrr_by_currency,
        money_objects.lifetime_value_by_currency,
        payment_facts.last_payment_at,
        display_values.display_fields
    from customers
    left join settings
        on customers.account_id = settings.account_id
    left join matches
        on customers.account_id = matches.account_id
        and customers.customer_id = matches.customer_id
    left join primary_subscriptions
        on customers.account_id = primary_subscriptions.account_id
        and customers.customer_id = primary_subscriptions.customer_id
    left join money_objects
        on customers.account_id = money_objects.account_id
        and customers.customer_id = money_objects.customer_id
    left join payment_facts
        on customers.account_id = payment_facts.account_id
        and customers.customer_id = payment_facts.customer_id
    left join display_values
        on customers.account_id = display_values.account_id
        and customers.customer_id = display_values.customer_id
),

final as (
    select
        joined.account_id,
        joined.customer_id,
        joined.email,
        joined.customer_name as name,
        joined.company_id,
        joined.is_deleted as deleted,
        joined.subscription_id,
        joined.subscription_status,
        joined.plan_name,
        -- Rounding again only gives a missing amount (0) its currency's scale.
        round(
            case
                when joined.mrr_mode = 'manual' then null
                else coalesce(money_rounded.mrr, 0)
            end,
            {{ currency_exponent('joined.currency') }}
        ) as mrr,
        joined.mrr_mode,
        joined.currency,
        round(
            coalesce(money_rounded.lifetime_value, 0),
            {{ currency_exponent('joined.currency') }}
        ) as lifetime_value,
        coalesce(joined.mrr_by_currency, '{}'::jsonb) as mrr_by_currency,
        coalesce(joined.lifetime_value_by_currency, '{}'::jsonb)
            as lifetime_value_by_currency,
        joined.last_payment_at,
        coalesce(joined.display_fields, '{}'::jsonb) as display_fields
    from joined
    left join money_rounded
        on joined.account_id = money_rounded.account_id
        and joined.customer_id = money_rounded.customer_id
        and joined.currency = money_rounded.currency
)

select * from final
