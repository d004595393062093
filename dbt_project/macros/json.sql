{#- Helpers for reading Stripe objects stored as jsonb. -#}

{#- A Stripe timestamp (seconds since the epoch) as timestamptz. -#}
{% macro epoch_to_timestamp(text_expression) -%}
    to_timestamp(nullif({{ text_expression }}, '')::double precision)
{%- endmacro %}

{#- The id of a field that is either an id string or an expanded object. -#}
{% macro json_id(json_expression) -%}
    (case jsonb_typeof({{ json_expression }})
        when 'object' then ({{ json_expression }}) ->> 'id'
        when 'string' then ({{ json_expression }}) #>> '{}'
    end)
{%- endmacro %}

{#- A jsonb value, with JSON null turned into SQL null. -#}
{% macro json_value(json_expression) -%}
    nullif({{ json_expression }}, 'null'::jsonb)
{%- endmacro %}

{#- An expanded object, or SQL null when the field is an id or absent. -#}
{% macro json_object(json_expression) -%}
    (case when jsonb_typeof({{ json_expression }}) = 'object'
        then {{ json_expression }}
    end)
{%- endmacro %}
