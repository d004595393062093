-- One row per subscription item: its billed quantity, the amount of one
-- billing period in exact minor units, and the monthly amount before any
-- discount. Price fields come from the item's embedded price (or legacy
-- plan) first and from the prices and plans tables when the item carries
-- only an id or omits the tiers.
with items as (
    select * from {{ ref('stg_stripe__subscription_items') }}
),

subscriptions as (
    select * from {{ ref('stg_stripe__subscriptions') }}
),

prices as (
    select * from {{ ref('stg_stripe__prices') }}
),

plans as (
    select * from {{ ref('stg_stripe__plans') }}
),

catalog as (
    select * from prices
    union all
    select * from plans
    where not exists (
        select 1
        from prices
        where prices.account_id = plans.account_id
            and prices.price_id = plans.price_id
    )
),

resolved as (
    select
        items.account_id,
        items.subscription_id,
        items.item_id,
        items.item_position,
        coalesce(items.price_id, items.price_reference) as price_id,
        coalesce(items.product_id, catalog.product_id) as product_id,
        coalesce(items.price_nickname, catalog.price_nickname)
            as price_nickname,
        coalesce(items.price_currency, catalog.price_currency, subscriptions.currency)
            as currency,
        coalesce(items.unit_amount_minor, catalog.unit_amount_minor)
            as unit_amount_minor,
        coalesce(items.billing_scheme, catalog.billing_scheme, 'per_unit')
            as billing_scheme,
        coalesce(items.tiers_mode, catalog.tiers_mode) as tiers_mode,
        coalesce(items.tiers, catalog.tiers) as tiers,
        coalesce(items.recurring_interval, catalog.recurring_interval)
            as recurring_interval,
        coalesce(
            items.recurring_interval_count, catalog.recurring_interval_count, 1
        ) as recurring_interval_count,
        coalesce(items.usage_type, catalog.usage_type, 'licensed') as usage_type,
        coalesce(items.transform_divide_by, catalog.transform_divide_by)
            as transform_divide_by,
        coalesce(items.transform_round, catalog.transform_round, 'down')
            as transform_round,
        coalesce(items.quantity, 1) as quantity,
        items.is_deleted,
        coalesce(items.current_period_start_at, subscriptions.current_period_start_at)
            as current_period_start_at,
        coalesce(items.current_period_end_at, subscriptions.current_period_end_at)
            as current_period_end_at
    from items
    left join subscriptions
        on items.account_id = subscriptions.account_id
        and items.subscription_id = subscriptions.subscription_id
    left join catalog
        on items.account_id = catalog.account_id
        and coalesce(items.price_id, items.price_reference) = catalog.price_id
),

billed as (
    select
        *,
        case
            when transform_divide_by is null or transform_divide_by = 0
                then quantity
            when transform_round = 'up'
                then ceil(quantity / transform_divide_by)
            else floor(quantity / transform_divide_by)
        end as billed_quantity
    from resolved
),

tiers as (
    select
        billed.account_id,
        billed.subscription_id,
        billed.item_id,
        billed.billed_quantity,
        tier.position as tier_position,
        case when jsonb_typeof(tier.object -> 'up_to') = 'number'
            then (tier.object ->> 'up_to')::numeric
        end as up_to,
        coalesce(
            (tier.object ->> 'unit_amount_decimal')::numeric,
            (tier.object ->> 'unit_amount')::numeric,
            0
        ) as unit_amount_minor,
        coalesce(
            (tier.object ->> 'flat_amount_decimal')::numeric,
            (tier.object ->> 'flat_amount')::numeric,
            0
        ) as flat_amount_minor
    from billed
    cross join lateral jsonb_array_elements(billed.tiers)
        with ordinality as tier (object, position)
    where billed.billing_scheme = 'tiered'
        and jsonb_typeof(billed.tiers) = 'array'
),

tier_bounds as (
    select
        *,
        coalesce(
            lag(up_to) over (
                partition by account_id, subscription_id, item_id
                order by tier_position
            ),
            0
        ) as lower_bound
    from tiers
),

-- Volume: the first tier whose `up_to` (inclusive, null is infinity)
-- contains the quantity prices every unit.
volume_amounts as (
    select distinct on (account_id, subscription_id, item_id)
        account_id,
        subscription_id,
        item_id,
        unit_amount_minor * billed_quantity + flat_amount_minor
            as period_amount_minor
    from tier_bounds
    where up_to is null or billed_quantity <= up_to
    order by account_id, subscription_id, item_id, tier_position
),

-- Graduated: each tier prices the units that fall in it, and adds its flat
-- amount when at least one unit does.
graduated_units as (
    select
        account_id,
        subscription_id,
        item_id,
        unit_amount_minor,
        flat_amount_minor,
        greatest(
            least(billed_quantity, coalesce(up_to, billed_quantity)) - lower_bound,
            0
        ) as units_in_tier
    from tier_bounds
),

graduated_amounts as (
    select
        account_id,
        subscription_id,
        item_id,
        sum(
            units_in_tier * unit_amount_minor
            + case when units_in_tier > 0 then flat_amount_minor else 0 end
        ) as period_amount_minor
    from graduated_units
    group by account_id, subscription_id, item_id
),

amounts as (
    select
        billed.*,
        case
            when billed.billing_scheme = 'tiered'
                and billed.tiers_mode = 'graduated'
                then graduated_amounts.period_amount_minor
            when billed.billing_scheme = 'tiered'
                then volume_amounts.period_amount_minor
            else billed.unit_amount_minor * billed.billed_quantity
        end as period_amount_minor,
        -- Monthly factor numerator and denominator for interval x count n:
        -- month 1/n, year 1/(12n), week 52/(12n), day 365/(12n).
        case billed.recurring_interval
            when 'week' then 52
            when 'day' then 365
            else 1
        end as monthly_factor_numerator,
        case billed.recurring_interval
            when 'month' then billed.recurring_interval_count
            else 12 * billed.recurring_interval_count
        end as monthly_factor_denominator
    from billed
    left join volume_amounts
        on billed.account_id = volume_amounts.account_id
        and billed.subscription_id = volume_amounts.subscription_id
        and billed.item_id = volume_amounts.item_id
    left join graduated_amounts
        on billed.account_id = graduated_amounts.account_id
        and billed.subscription_id = graduated_amounts.subscription_id
        and billed.item_id = graduated_amounts.item_id
),

final as (
    select
        account_id,
        subscription_id,
        item_id,
        price_id,
        product_id,
        item_position,
        price_nickname,
        currency,
        billing_scheme,
        tiers_mode,
        recurring_interval,
        recurring_interval_count,
        usage_type,
        trim_scale(quantity) as quantity,
        trim_scale(billed_quantity) as billed_quantity,
        trim_scale(unit_amount_minor) as unit_amount_minor,
        trim_scale(period_amount_minor) as period_amount_minor,
        monthly_factor_numerator,
        monthly_factor_denominator,
        trim_scale(
            period_amount_minor * monthly_factor_numerator / monthly_factor_denominator
        ) as monthly_amount_minor,
        usage_type = 'metered' as is_metered,
        is_deleted,
        usage_type <> 'metered'
            and not is_deleted
            and recurring_interval is not null as is_counted,
        current_period_start_at,
        current_period_end_at
    from amounts
)

select * from final
