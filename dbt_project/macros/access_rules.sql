{#
  The access rules every consumer reads, written once: effective access from grant paths, the review
  population and the risks. Models use them with `ref`s: the marts at the latest sync, and the table-macro
  models over a date (models/marts/table_macros: `marts.effective_access_as_of`, `marts.review_population`,
  `marts.access_risks_as_of`), which the review export, the evidence pack and the dashboard select from.
  Python writes no access rule.
#}

{#
  One row per (workspace, resource, user) from `paths` (a relation or CTE with fct_grants' columns): the highest
  permission, the paths that give it, all paths, and list columns to read instead of parsing labels.
  `first_granted` is an expression over the paths (e.g. `min(valid_from)` over the history), or null.
#}
{% macro effective_access(paths, extra_columns=[], first_granted='null::timestamptz') %}
{%- set member_keys = (extra_columns + ['workspace_slug', 'principal_id']) | join(', ') %}
select
    {% for column in extra_columns %}{{ column }}, {% endfor %}
    workspace_slug, resource_type, resource_id, resource_key, resource_name, user_uuid, user_account_id,
    user_display_name, permission, {{ permission_rank('permission') }} as permission_rank,
    len(top_grant_paths) as grant_path_count,
    top_grant_paths,
    len(ranked) as all_grant_path_count,
    [p.path for p in ranked] as all_grant_paths,
    [p.words for p in ranked] as access_paths,
    grant_sources, via_group_slugs, via_project_keys, is_workspace_member, first_granted_at
from (
    select
        *,
        -- The paths that give the permission held: the first ones (in label order among them).
        [p.path for p in ranked if p.rank = ranked[1].rank] as top_grant_paths
    from (
        select
            {% for column in extra_columns %}{{ column }}, {% endfor %}
            workspace_slug,
            resource_type,
            resource_id,
            any_value(resource_key) as resource_key,
            any_value(resource_name) as resource_name,
            principal_id as user_uuid,
            any_value(user_account_id) as user_account_id,
            any_value(principal_name) as user_display_name,
            arg_max(permission, path_rank) as permission,
            -- One list, highest permission first, then by label, that every path column is read from: sorted
            -- after the aggregate (`rank` is negated), as an ordered aggregate costs more than the sort.
            list_sort(list({'rank': -path_rank, 'path': grant_path, 'words': grant_path_text})) as ranked,
            {{ distinct_list('grant_source') }} as grant_sources,
            {{ distinct_list('via_group_slug') }} as via_group_slugs,
            {{ distinct_list('via_project_key') }} as via_project_keys,
            coalesce(bool_or(is_member), false) as is_workspace_member,
            {{ first_granted }} as first_granted_at
        from (
            select
                *,
                -- Not `permission_rank`: the paths (fct_grants, the history) carry a column of that name.
                {{ permission_rank('permission') }} as path_rank,
                {{ grant_path_label() }} as grant_path,
                {{ grant_path_text() }} as grant_path_text
            from {{ paths }}
            where principal_type = 'user' and resource_type in ('workspace', 'project', 'repository')
        ) as paths
        -- A workspace role is a member's path on the workspace; people without one hold access from outside. A
        -- join, not a window over each user's paths, so that a filter on one resource (`where resource_id = ...`
        -- over `marts.effective_access_as_of`) still reaches the history's scan.
        left join (
            select distinct {{ member_keys }}, true as is_member from {{ paths }}
            where principal_type = 'user' and resource_type = 'workspace'
        ) as members using ({{ member_keys }})
        group by {% for column in extra_columns %}{{ column }}, {% endfor %}workspace_slug, resource_type, resource_id,
            principal_id
    ) as grouped
) as effective
{% endmacro %}


{# Grant paths held at `as_of` (an SQL expression), from the history. #}
{% macro paths_held_at(history, as_of) %}
select * from {{ history }}
where valid_from <= cast({{ as_of }} as timestamptz) and (valid_to is null or valid_to > cast({{ as_of }} as timestamptz))
{% endmacro %}


{#
  The access review population at `as_of`: one row per (user, resource, permission) held, group memberships
  included, with every path, when it was first granted, the user's last access and groups, and what a `revoke`
  can take away: the groups behind the access (`removable_via_groups`) and the paths a person must remove in
  Bitbucket (`paths_outside_groups`).
#}
{% macro review_population(history, members, as_of, workspace) %}
with held as (
    select * from ({{ paths_held_at(history, as_of) }})
    where principal_type = 'user' and resource_type in ('repository', 'project', 'workspace', 'group')
      and ({{ workspace }} is null or workspace_slug = {{ workspace }})
),

items as (
    select
        workspace_slug, resource_type, resource_id, principal_id,
        any_value(resource_key) as resource_key,
        any_value(resource_name) as resource_name,
        any_value(user_account_id) as user_account_id,
        any_value(principal_name) as user_display_name,
        arg_max(permission, {{ permission_rank('permission') }}) as permission,
        string_agg({{ grant_path_label() }}, '; ' order by grant_source, via_group_slug, via_project_key)
            as grant_paths,
        {{ distinct_list('via_group_slug') }} as via_group_slugs,
        coalesce(list({{ grant_path_label() }} order by grant_source, via_project_key)
            filter (where via_group_slug is null), []::varchar[]) as paths_without_group,
        min(valid_from) as first_granted_at
    from held
    group by workspace_slug, resource_type, resource_id, principal_id
),

groups_of as (
    select workspace_slug, principal_id, string_agg(resource_key, ', ' order by resource_key) as groups
    from held where resource_type = 'group' group by all
),

accessed as (
    select workspace_slug, user_uuid, max(last_accessed) as last_accessed
    from {{ members }} where synced_at <= cast({{ as_of }} as timestamptz) group by all
)

select
    i.workspace_slug || ':' || i.resource_type || ':' || i.resource_key || ':' || i.principal_id as review_item,
    cast({{ as_of }} as timestamptz) as as_of,
    i.workspace_slug, i.resource_type, i.resource_key, i.resource_name,
    i.principal_id as user_uuid, i.user_account_id, i.user_display_name, i.permission, i.grant_paths,
    i.first_granted_at, a.last_accessed, coalesce(g.groups, '') as groups,
    -- A revoke removes the user from these groups; a group item is revoked by leaving that group.
    case when i.resource_type = 'group' then [i.resource_key] else i.via_group_slugs end as removable_via_groups,
    case when i.resource_type = 'group' then []::varchar[] else i.paths_without_group end as paths_outside_groups
from items i
left join groups_of g on g.workspace_slug = i.workspace_slug and g.principal_id = i.principal_id
left join accessed a on a.workspace_slug = i.workspace_slug and a.user_uuid = i.principal_id
order by i.workspace_slug, i.resource_type, i.resource_key, i.user_display_name
{% endmacro %}


{#
  Open risks at `as_of`: one row per (risk, workspace, resource or user) with a sentence of detail. Each
  workspace is judged on its last observation at or before `as_of`. `leavers` is the relation HR fills
  (provisioning.leavers), or none.
#}
{% macro access_risks(history, observations, members, repositories, users, as_of, leavers=none, dormant_days=90) %}
with held as ({{ paths_held_at(history, as_of) }}),

eff as ({{ effective_access('held') }}),

observed as (
    select sync_id, workspace_slug from {{ observations }}
    where synced_at <= cast({{ as_of }} as timestamptz)
    qualify row_number() over (partition by workspace_slug order by synced_at desc) = 1
),

members as (select m.* from {{ members }} as m inner join observed using (sync_id, workspace_slug)),

repositories as (select r.* from {{ repositories }} as r inner join observed using (sync_id, workspace_slug)),

people as (
    select * from {{ users }} where synced_at <= cast({{ as_of }} as timestamptz)
    qualify row_number() over (partition by user_uuid order by synced_at desc) = 1
)

select 'workspace owner' as risk, workspace_slug, 'workspace' as resource_type, resource_key,
       principal_name as user_display_name, principal_id as user_uuid, 'admin on every repository' as detail
from held where resource_type = 'workspace' and principal_type = 'user' and permission = 'owner'
union all
select 'direct admin grant', workspace_slug, resource_type, resource_key, principal_name, principal_id,
       'admin configured for the user directly'
from held where principal_type = 'user' and grant_source = 'direct' and permission = 'admin'
  and resource_type in ('repository', 'project')
union all
select 'access only through direct grants', workspace_slug, 'user', '', user_display_name, user_uuid,
       {{ counted('count(*)', 'resource') }} || ', none through a group or project'
from eff where resource_type = 'repository'
group by workspace_slug, user_display_name, user_uuid
having bool_and(grant_sources = ['direct'])
union all
-- The path kinds the access really comes through, in words (a non-member's grants are usually direct, but a
-- group or project path is listed as such).
select 'access held outside the workspace membership', e.workspace_slug, 'user', '', e.user_display_name,
       e.user_uuid,
       coalesce(any_value(p.user_type), 'user')
       || case when bool_or({{ is_deleted_account('p') }}) then ' (deleted account)' else '' end
       || ', not a member; reaches ' || {{ counted('count(*)', 'resource') }} || ' through '
       || {{ path_kinds_in_words('list_sort(list_distinct(flatten(list(e.grant_sources))))') }}
from eff e left join people p using (user_uuid)
where not e.is_workspace_member
group by e.workspace_slug, e.user_display_name, e.user_uuid
union all
select 'dormant account', m.workspace_slug, 'user', '', p.display_name, m.user_uuid,
       'last accessed ' || strftime(m.last_accessed, '%Y-%m-%d')
from members m left join people p using (user_uuid)
where m.last_accessed < cast({{ as_of }} as timestamptz) - interval {{ dormant_days }} days
union all
-- Bitbucket omits last_accessed for workspaces administered from admin.atlassian.com: say "unknown" for the
-- workspace rather than list nobody.
select 'dormant accounts unknown', workspace_slug, 'workspace', workspace_slug, '', '',
       'Bitbucket reports no last access for this workspace''s ' || {{ counted('count(*)', 'member') }} || ' (administered '
       || 'from admin.atlassian.com?): check dormant accounts in Atlassian Administration'
from members group by workspace_slug having bool_and(last_accessed is null)
union all
select 'repository without an admin', r.workspace_slug, 'repository', r.repository_slug, '', '',
       'no admin path other than the workspace owners'
from repositories r
where not exists (select 1 from held h
                  where h.resource_type = 'repository' and h.resource_id = r.repository_uuid
                  and h.permission = 'admin' and h.grant_source <> 'workspace')
union all
-- Public: anyone, signed in or not, can read and clone it. Bitbucket's effective-permission list names no such
-- reader, so neither do the marts: one risk row says it.
select 'public repository', workspace_slug, 'repository', repository_slug, 'anyone', '',
       'public: anyone, signed in or not, can read and clone it'
from repositories where not is_private
{% if leavers %}
union all
-- Leavers are listed by `{uuid}` or by Atlassian account id.
select 'access still held by a leaver', e.workspace_slug, 'user', '', e.user_display_name, e.user_uuid,
       'left on ' || strftime(l.left_on, '%Y-%m-%d') || '; still reaches ' || {{ counted('count(*)', 'resource') }}
from eff e
inner join {{ leavers }} l on l.user_id in (e.user_uuid, e.user_account_id)
where l.left_on <= cast({{ as_of }} as date)
group by e.workspace_slug, e.user_display_name, e.user_uuid, l.left_on
{% endif %}
{% endmacro %}


{#
  A deleted Atlassian account, in the shape Bitbucket gives it: "Former user", no account id and no nickname in
  any sighting (`u` a relation with dim_users' identity columns). A user whom the lists merely show without an
  account id (Atlassian's examples of the member and effective lists do) is not one.
#}
{% macro is_deleted_account(u) %}
({{ u }}.account_id is null and {{ u }}.nickname is null and {{ u }}.display_name = 'Former user'
 and coalesce({{ u }}.user_type, 'user') = 'user')
{% endmacro %}


{#
  A list of grant sources (`direct`, `group`, `project`, `workspace`) in words, e.g. "direct grants and
  groups".
#}
{% macro path_kinds_in_words(sources) %}
{%- set w -%}
list_transform({{ sources }}, lambda s: case s when 'direct' then 'direct grants' when 'group' then 'groups'
    when 'project' then 'project permissions' when 'workspace' then 'the workspace owner role' else s end)
{%- endset -%}
(case when len({{ w }}) <= 1 then coalesce({{ w }}[1], 'no path')
      else array_to_string({{ w }}[1:len({{ w }}) - 1], ', ') || ' and ' || {{ w }}[len({{ w }})] end)
{% endmacro %}


{# Severity as a sort key: high 1, medium 2, low 3 (seeds/risk_guidance.csv). #}
{% macro severity_order(column) -%}
    case {{ column }} when 'high' then 1 when 'medium' then 2 when 'low' then 3 else 4 end
{%- endmacro %}

{#
  Findings (`access_risks` or change-control rows) with their guidance, plus one `checked: none` row for every
  risk of the guidance that found nothing, so that "checked, none" reads differently from "not checked"; severity
  first. `unknowns` (change_control_unknowns' rows, or none) are where a risk could not be checked: a risk
  with such rows is never `checked: none` there. `status` says which a row is (`open`, `unknown`,
  `checked: none`), `is_finding` whether it is a finding. `in_workspace`: an SQL expression naming one workspace
  (its findings, and `checked: none` for the risks without one there), or null for all.
#}
{% macro risk_register(findings, guidance, in_workspace='null', unknowns=none) %}
select
    g.risk,
    f.workspace_slug, f.resource_type, f.resource_key, f.user_display_name, f.user_uuid,
    coalesce(f.detail, 'checked: none') as detail,
    g.severity,
    g.why_it_matters,
    g.what_to_do,
    coalesce(f.status = 'open', false) as is_finding,
    {{ severity_order('g.severity') }} as severity_order,
    coalesce(f.status, 'checked: none') as status,
    g.area
from {{ guidance }} as g
left join (
    select risk, workspace_slug, resource_type, resource_key, user_display_name, user_uuid, detail,
           'open' as status
    from {{ findings }}
    {%- if unknowns %}
    union all
    select risk, workspace_slug, resource_type, resource_key, user_display_name, user_uuid, detail, 'unknown'
    from {{ unknowns }}
    {%- endif %}
) as f on f.risk = g.risk and ({{ in_workspace }} is null or f.workspace_slug = {{ in_workspace }})
{% endmacro %}

{#
  One row per risk of the guidance: its findings counted, `open`, `unknown` (no finding, but not checkable
  everywhere: `unknown` counts the repositories or people, from change_control_unknowns' rows) or `checked:
  none`, severity first.
#}
{% macro risk_summary(findings, guidance, unknowns=none) %}
select
    g.risk,
    g.severity,
    {{ severity_order('g.severity') }} as severity_order,
    count(f.risk) as findings,
    case
        when count(f.risk) > 0 then 'open'
        when coalesce(any_value(u.unknown), 0) > 0 then 'unknown'
        else 'checked: none'
    end as status,
    g.why_it_matters,
    g.what_to_do,
    coalesce(any_value(u.unknown), 0) as unknown,
    g.area
from {{ guidance }} as g
left join {{ findings }} as f using (risk)
left join (
    {%- if unknowns %}
    select risk, sum(unknown_count) as unknown from {{ unknowns }} group by risk
    {%- else %}
    select null::varchar as risk, null::bigint as unknown where false
    {%- endif %}
) as u on u.risk = g.risk
group by all
{% endmacro %}


{# `1 resource`, `2 resources`: a count and its noun, singular for one (details are read by people). #}
{% macro counted(n, noun) -%}
    ({{ n }} || ' ' || case when {{ n }} = 1 then '{{ noun }}' else '{{ noun }}s' end)
{%- endmacro %}

{#
  Both seeds of guidance as one relation with an `area` (`access`, `change control`), for the register and the
  summary. `bare`: without the catalog (table macros).
#}
{% macro all_risk_guidance(bare=false) %}
(select risk, severity, why_it_matters, what_to_do, 'access' as area from {{ cc_ref('risk_guidance', bare) }}
 union all
 select risk, severity, why_it_matters, what_to_do, 'change control'
 from {{ cc_ref('change_control_risk_guidance', bare) }})
{% endmacro %}
