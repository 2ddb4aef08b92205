-- One row per permission list in each complete snapshot: read by that sync, or carried forward from the sync
-- that last read it (extraction/refresh.py). A list's age is how stale its grant paths can be.
{{ permission_lists(source('bitbucket_raw', 'fetch_log'), ref('stg_bitbucket__syncs')) }}
