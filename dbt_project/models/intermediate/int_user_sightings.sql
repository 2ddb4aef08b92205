-- Where each user was seen in each workspace's latest observation: one row per (workspace, user, list).
-- Membership is one of them; outside collaborators, app users and "Former user" accounts show up only in
-- permission lists and Bitbucket's effective list.
{% set lists = [
    ('stg_bitbucket__workspace_members', 'workspace_members'),
    ('stg_bitbucket__group_members', 'group_members'),
    ('stg_bitbucket__project_user_permissions', 'project_permissions'),
    ('stg_bitbucket__repository_user_permissions', 'repository_permissions'),
    ('stg_bitbucket__effective_repository_permissions', 'effective_permissions'),
] %}
{% for model, seen_in in lists %}
select distinct sync_id, workspace_slug, user_uuid, '{{ seen_in }}' as seen_in
from {{ ref(model) }}
where {{ latest_observation() }}
{% if not loop.last %}union all{% endif %}
{% endfor %}
