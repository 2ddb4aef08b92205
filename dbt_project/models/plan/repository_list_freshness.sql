-- For the sync in progress (raw.syncs running or interrupted): every repository whose lists the workspace's latest
-- complete observation holds, when they were read, and whether they are due again today (extraction/refresh.py).
-- Due: older than N days (max_age_days, the sync's setting), or today is the repository's rolling day: each
-- repository has one day in every N, spread by a hash of its uuid, so a daily sync re-reads about 1/N of them.
-- It reads the raw tables mid-sync (source bitbucket_sync_in_progress), never staging, which the sync publishes.
{% set raw_syncs = source('bitbucket_sync_in_progress', 'syncs') %}
with

complete as ({{ complete_syncs(raw_syncs) }}),

observations as ({{ workspace_observations('complete') }}),

permission_lists as ({{ permission_lists(source('bitbucket_sync_in_progress', 'fetch_log'), 'complete') }}),

running as (
    select
        sync_id,
        started_at,
        coalesce(try_cast(options ->> 'max_age_days' as integer), 7) as max_age_days
    from {{ raw_syncs }}
    where status in ('running', 'interrupted')
),

lists as (
    select
        workspace_slug,
        resource_id as repository_uuid,
        min(read_at) as lists_read_at,
        arg_min(observed_sync_id, read_at) as observed_sync_id
    from permission_lists
    where resource_type = 'repository' and {{ latest_observation(observations='observations') }}
    group by all
)

select
    r.sync_id,
    l.workspace_slug,
    l.repository_uuid,
    l.lists_read_at,
    l.observed_sync_id,
    round(epoch(r.started_at - l.lists_read_at) / 86400, 2) as age_days,
    r.max_age_days,
    case
        when l.lists_read_at <= r.started_at - to_days(r.max_age_days)
            then 'due: last read ' || round(epoch(r.started_at - l.lists_read_at) / 86400, 1) || ' days ago'
        when hash(l.repository_uuid) % r.max_age_days = floor(epoch(r.started_at) / 86400)::bigint % r.max_age_days
            and floor(epoch(l.lists_read_at) / 86400) < floor(epoch(r.started_at) / 86400)
            then 'due: rolling re-read, one day in ' || r.max_age_days
    end as due_reason
from running as r
cross join lists as l
