with source as (
    select * from {{ source('halo', 'integration_settings') }}
),

typed as (
    select
        account_id,
        workspace_id,
        customer_id_field,
        mrr_mode,
        lower(reporting_currency) as reporting_currency,
        coalesce(display_fields, '[]'::jsonb) as display_fields,
        coalesce(health_statuses, '["active"]'::jsonb) as health_statuses
    from source
)

select * from typed
