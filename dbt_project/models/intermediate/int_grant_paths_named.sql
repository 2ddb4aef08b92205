-- Grant paths with the names analysts read, for every complete sync.
{{ named_grant_paths('true') }}
