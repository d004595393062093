with source as (
    select * from {{ source('halo', 'exchange_rates') }}
),

typed as (
    select
        lower(currency) as currency,
        lower(reporting_currency) as reporting_currency,
        rate
    from source
)

select * from typed
