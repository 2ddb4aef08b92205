-- Every repository and project access key in each workspace's latest observation: who added it, whether they
-- are still a member, and how long since it was last used (macros/change_control_rights.sql). (Bitbucket's
-- access keys are read-only; an audit still asks which exist, who added them and whether they are used.)
{{ deploy_keys() }}
