{#- Fails for each combination of `columns` that occurs more than once:
    the grain test of models keyed by several columns. -#}
{% test unique_combination(model, columns) %}
select
    {{ columns | join(', ') }},
    count(*) as row_count
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
