-- A grant path has at most one open version, and every closed version ends after it starts.
select grant_key, count(*) filter (where valid_to is null) as open_versions
from {{ ref('fct_grant_history') }}
group by grant_key
having count(*) filter (where valid_to is null) > 1
    or count(*) filter (where valid_to is not null and valid_to <= valid_from) > 0
