{#- Fails for each row where `expression` is not true: money identities and
    other row-level rules. -#}
{% test expression_is_true(model, expression) %}
select *
from {{ model }}
where not coalesce(({{ expression }}), false)
{% endtest %}
