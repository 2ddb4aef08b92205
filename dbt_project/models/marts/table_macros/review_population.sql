-- marts.review_population(ts, workspace): an access review's rows at `ts`, of one workspace or (null) all.
{{ config(parameters=['as_of', 'in_workspace']) }}
{{ review_population(
    unqualified(ref('fct_grant_history')), unqualified(ref('stg_bitbucket__workspace_members')),
    'as_of', 'in_workspace'
) }}
