with source as (
    select * from {{ source('halo', 'companies') }}
),

typed as (
    select
        id as company_id,
        workspace_id,
        name as company_name,
        nullif(btrim(domain), '') as domain,
        nullif(btrim(email), '') as email,
        nullif(btrim(stripe_customer_id), '') as stripe_customer_id,
        coalesce(traits, '{}'::jsonb) as traits
    from source
)

select * from typed
