{#- The instant the marts describe: the `as_of` var when given, otherwise
    the start of this dbt invocation (UTC). -#}
{% macro as_of() -%}
    {%- set configured = var('as_of', none) -%}
    {%- if configured -%}
        cast('{{ configured }}' as timestamptz)
    {%- else -%}
        cast('{{ run_started_at.strftime("%Y-%m-%dT%H:%M:%S.%f") }}+00:00' as timestamptz)
    {%- endif -%}
{%- endmacro %}
