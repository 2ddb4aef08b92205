"""The demo's approver policy passes the guard it is held to, whatever the umask made of the data folder."""

from __future__ import annotations

import os
import stat

from bitbucket_assets.provisioning.approvals import ApproverPolicy
from bitbucket_simulator import load_organisation
from bitbucket_simulator.demo import demo_signers


def test_the_demo_policy_is_guarded_in_a_data_folder_others_can_write(tmp_path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o775)  # a umask of 002: the group may write the warehouse's folder
    previous = os.umask(0o002)
    try:
        signers = demo_signers(load_organisation("tiny"), data / "demo.duckdb", set())
    finally:
        os.umask(previous)
    policy = ApproverPolicy.load(str(signers.policy))
    assert policy.configured and policy.require_signatures == "always" and len(policy.signers) == 2
    assert stat.S_IMODE(signers.policy.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(signers.policy.stat().st_mode) == 0o600
