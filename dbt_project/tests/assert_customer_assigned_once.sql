-- A customer is assigned to at most one company.
select
    account_id,
    customer_id,
    count(*) as assigned_count
from {{ ref('int_halo__company_customer_matches') }}
where is_assigned
group by account_id, customer_id
having count(*) > 1
