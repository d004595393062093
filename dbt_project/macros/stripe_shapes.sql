{#- Column lists shared by the staging models that read the same Stripe
    shape from different places. -#}

{#- A price and a legacy plan normalised into one set of price columns.
    `price` wins field by field; a plan maps `interval`, `interval_count`
    and `usage_type` to the price's `recurring`, `amount` to
    `unit_amount` and `transform_usage` to `transform_quantity`.
    Pass `null::jsonb` for a side that is absent. -#}
{% macro normalized_price_columns(price, plan) -%}
    coalesce(
        ({{ price }}) ->> 'id',
        ({{ plan }}) ->> 'id'
    ) as price_id,
    coalesce(
        {{ json_id("(" ~ price ~ ") -> 'product'") }},
        {{ json_id("(" ~ plan ~ ") -> 'product'") }}
    ) as product_id,
    coalesce(
        ({{ price }}) ->> 'nickname',
        ({{ plan }}) ->> 'nickname'
    ) as price_nickname,
    lower(coalesce(
        ({{ price }}) ->> 'currency',
        ({{ plan }}) ->> 'currency'
    )) as price_currency,
    coalesce(
        (({{ price }}) ->> 'unit_amount_decimal')::numeric,
        (({{ price }}) ->> 'unit_amount')::numeric,
        (({{ plan }}) ->> 'amount_decimal')::numeric,
        (({{ plan }}) ->> 'amount')::numeric
    ) as unit_amount_minor,
    coalesce(
        ({{ price }}) ->> 'billing_scheme',
        ({{ plan }}) ->> 'billing_scheme'
    ) as billing_scheme,
    coalesce(
        ({{ price }}) ->> 'tiers_mode',
        ({{ plan }}) ->> 'tiers_mode'
    ) as tiers_mode,
    coalesce(
        {{ json_value("(" ~ price ~ ") -> 'tiers'") }},
        {{ json_value("(" ~ plan ~ ") -> 'tiers'") }}
    ) as tiers,
    coalesce(
        ({{ price }}) -> 'recurring' ->> 'interval',
        ({{ plan }}) ->> 'interval'
    ) as recurring_interval,
    coalesce(
        (({{ price }}) -> 'recurring' ->> 'interval_count')::integer,
        (({{ plan }}) ->> 'interval_count')::integer
    ) as recurring_interval_count,
    coalesce(
        ({{ price }}) -> 'recurring' ->> 'usage_type',
        ({{ plan }}) ->> 'usage_type'
    ) as usage_type,
    coalesce(
        (({{ price }}) -> 'transform_quantity' ->> 'divide_by')::numeric,
        (({{ plan }}) -> 'transform_usage' ->> 'divide_by')::numeric
    ) as transform_divide_by,
    coalesce(
        ({{ price }}) -> 'transform_quantity' ->> 'round',
        ({{ plan }}) -> 'transform_usage' ->> 'round'
    ) as transform_round
{%- endmacro %}

{#- The fields of a coupon object that discounts need. -#}
{% macro coupon_columns(coupon) -%}
    ({{ coupon }}) ->> 'id' as coupon_id,
    ({{ coupon }}) ->> 'name' as coupon_name,
    ({{ coupon }}) ->> 'duration' as duration,
    (({{ coupon }}) ->> 'duration_in_months')::integer as duration_in_months,
    (({{ coupon }}) ->> 'percent_off')::numeric as percent_off,
    (({{ coupon }}) ->> 'amount_off')::numeric as amount_off_minor,
    lower(({{ coupon }}) ->> 'currency') as coupon_currency,
    {{ json_value("(" ~ coupon ~ ") -> 'currency_options'") }} as currency_options,
    {{ json_value("(" ~ coupon ~ ") -> 'applies_to' -> 'products'") }}
        as applies_to_products
{%- endmacro %}
