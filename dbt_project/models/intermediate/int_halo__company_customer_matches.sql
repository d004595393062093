-- One row per company and Stripe customer that match, with the kind of
-- match and whether the customer is assigned to this company.
--
-- A company matches only customers of an account whose settings row has the
-- company's workspace_id. The company field named by `customer_id_field`
-- (a column, or `traits.<key>`) matches when it equals the customer's id
-- (`id`), or equals its email ignoring case and surrounding spaces
-- (`email`). When the field is `domain`, it also matches the domain of the
-- customer's email (`domain`). When it is `name`, it also matches the
-- customer's name ignoring case (`name`). A customer that matches several
-- companies is assigned to the most specific match (id, email, domain,
-- name), then to the lowest company id, never to two.
with companies as (
    select * from {{ ref('stg_halo__companies') }}
),

settings as (
    select * from {{ ref('stg_halo__integration_settings') }}
),

customers as (
    select * from {{ ref('stg_stripe__customers') }}
),

company_keys as (
    select
        companies.company_id,
        settings.account_id,
        settings.customer_id_field,
        nullif(btrim(case settings.customer_id_field
            when 'id' then companies.company_id
            when 'name' then companies.company_name
            when 'email' then companies.email
            when 'domain' then companies.domain
            when 'stripe_customer_id' then companies.stripe_customer_id
            else companies.traits ->> regexp_replace(
                settings.customer_id_field, '^traits[.]', ''
            )
        end), '') as match_value
    from companies
    inner join settings
        on companies.workspace_id = settings.workspace_id
),

id_matches as (
    select
        company_keys.company_id,
        customers.account_id,
        customers.customer_id,
        'id' as match_kind,
        1 as match_rank
    from company_keys
    inner join customers
        on company_keys.account_id = customers.account_id
        and company_keys.match_value = customers.customer_id
),

email_matches as (
    select
        company_keys.company_id,
        customers.account_id,
        customers.customer_id,
        'email' as match_kind,
        2 as match_rank
    from company_keys
    inner join customers
        on company_keys.account_id = customers.account_id
        and lower(company_keys.match_value) = lower(customers.email)
),

domain_matches as (
    select
        company_keys.company_id,
        customers.account_id,
        customers.customer_id,
        'domain' as match_kind,
        3 as match_rank
    from company_keys
    inner join customers
        on company_keys.account_id = customers.account_id
        and lower(ltrim(company_keys.match_value, '@'))
            = lower(split_part(customers.email, '@', 2))
    where company_keys.customer_id_field = 'domain'
        and customers.email like '%@%'
),

name_matches as (
    select
        company_keys.company_id,
        customers.account_id,
        customers.customer_id,
        'name' as match_kind,
        4 as match_rank
    from company_keys
    inner join customers
        on company_keys.account_id = customers.account_id
        and lower(company_keys.match_value) = lower(btrim(customers.customer_name))
    where company_keys.customer_id_field = 'name'
),

candidates as (
    select * from id_matches
    union all
    select * from email_matches
    union all
    select * from domain_matches
    union all
    select * from name_matches
),

best_per_pair as (
    select distinct on (company_id, account_id, customer_id)
        company_id,
        account_id,
        customer_id,
        match_kind,
        match_rank
    from candidates
    order by company_id, account_id, customer_id, match_rank
),

ranked as (
    select
        *,
        row_number() over (
            partition by account_id, customer_id
            order by
                match_rank,
                case when company_id ~ '^[0-9]+$' then company_id::numeric end
                    nulls last,
                company_id
        ) as company_rank,
        count(*) over (partition by account_id, customer_id)
            as matching_company_count
    from best_per_pair
),

final as (
    select
        company_id,
        account_id,
        customer_id,
        match_kind,
        match_rank,
        matching_company_count,
        company_rank = 1 as is_assigned
    from ranked
)

select * from final
