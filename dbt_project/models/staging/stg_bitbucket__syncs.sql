-- Complete syncs only (macros/observations.sql): the one place that decides which snapshots exist downstream.
{{ complete_syncs(source('bitbucket_raw', 'syncs')) }}
