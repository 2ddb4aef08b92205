-- marts.access_as_of(ts): every grant path held at `ts` (seen by the last complete sync at or before it).
{{ config(parameters=['as_of']) }}
{{ paths_held_at(unqualified(ref('fct_grant_history')), 'as_of') }}
