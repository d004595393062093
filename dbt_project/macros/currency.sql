{#- The one place that knows each currency's minor-unit exponent.
    Stripe amounts are integers in the minor unit: 0 decimals for the
    zero-decimal currencies, 3 for the three-decimal ones, 2 for the rest
    (ISK and HUF included), per docs.stripe.com/currencies. -#}
{% macro zero_decimal_currencies() -%}
    {{ return(['bif', 'clp', 'djf', 'gnf', 'jpy', 'kmf', 'krw', 'mga', 'pyg',
               'rwf', 'ugx', 'vnd', 'vuv', 'xaf', 'xof', 'xpf']) }}
{%- endmacro %}

{% macro three_decimal_currencies() -%}
    {{ return(['bhd', 'jod', 'kwd', 'omr', 'tnd']) }}
{%- endmacro %}

{% macro currency_exponent(currency) -%}
    (case
        when lower({{ currency }}) in (
            {%- for code in zero_decimal_currencies() -%}
                '{{ code }}'{{ ", " if not loop.last }}
            {%- endfor -%}
        ) then 0
        when lower({{ currency }}) in (
            {%- for code in three_decimal_currencies() -%}
                '{{ code }}'{{ ", " if not loop.last }}
            {%- endfor -%}
        ) then 3
        else 2
    end)
{%- endmacro %}

{#- Convert an exact amount in minor units to major units, rounding half
    away from zero (PostgreSQL's numeric `round`) to the currency's
    exponent. The inner round to 12 places removes the last-digit error of
    repeated divisions, so a sum that is exactly half a minor unit in
    rational arithmetic rounds up as it should. -#}
{% macro minor_to_major(amount_minor, currency) -%}
    round(
        round(({{ amount_minor }})::numeric, 12)
            / power(10::numeric, {{ currency_exponent(currency) }}),
        {{ currency_exponent(currency) }}
    )
{%- endmacro %}
