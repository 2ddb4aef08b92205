"""The approver policy: guarded like an SSH key, its allowed signers one person per key, and people compared
as one key across `{uuid}`, account id and a mapped email."""

from __future__ import annotations

import os

import pytest

from bitbucket_assets.provisioning.approvals import ApproverPolicy, ApproverPolicyError, People
from bitbucket_assets.settings import SettingsError, load_settings
from bitbucket_assets.signing import public_key
from tests.support.signing import keypair

OLGA = "557058:0a0a0a0a-0000-4000-8000-00000000o1ga"
OLGA_UUID = "{0a0a0a0a-1111-4000-8000-0000000000aa}"


def write(directory, text: str, mode: int = 0o644):
    path = directory / "approvers.yaml"
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


BASE = f'identities: {{olga@x.example: "{OLGA}"}}\napprovers: {{"*": {{people: [olga@x.example]}}}}\n'


@pytest.mark.parametrize(
    ("file_mode", "folder_mode", "problem"),
    [
        (0o666, 0o755, r"can be written by others \(mode 666\): chmod go-w"),
        (0o620, 0o755, r"can be written by others \(mode 620\): chmod go-w"),
        (0o644, 0o777, r"its directory .* can be written by others \(mode 777\), who could replace the file"),
    ],
)
def test_a_policy_others_can_write_is_refused_naming_the_problem(
    tmp_path, file_mode, folder_mode, problem
) -> None:
    folder = tmp_path / "policy"
    folder.mkdir()
    path = write(folder, BASE, file_mode)
    folder.chmod(folder_mode)
    with pytest.raises(ApproverPolicyError, match=problem):
        ApproverPolicy.load(str(path))
    folder.chmod(0o755)
    path.chmod(0o644)
    assert ApproverPolicy.load(str(path)).configured


def test_a_policy_owned_by_someone_else_is_refused(tmp_path) -> None:
    if os.getuid() != 0:
        pytest.skip("only root can give a file to another user")
    path = write(tmp_path, BASE)
    os.chown(path, 4242, -1)
    with pytest.raises(ApproverPolicyError, match="owned by user id 4242, who could rewrite it"):
        ApproverPolicy.load(str(path))


def test_an_empty_policy_variable_is_an_error_not_no_policy(clean_env, tmp_path) -> None:
    clean_env.setenv("BITBUCKET_APPROVER_POLICY", "")
    with pytest.raises(SettingsError, match="BITBUCKET_APPROVER_POLICY is set but empty"):
        load_settings()
    with pytest.raises(SettingsError, match="BITBUCKET_APPROVER_POLICY is set but empty"):
        load_settings({"BITBUCKET_APPROVER_POLICY": "  ", "DUCKDB_PATH": str(tmp_path / "w.duckdb")})
    clean_env.delenv("BITBUCKET_APPROVER_POLICY")
    assert load_settings().bitbucket_approver_policy is None
    with pytest.raises(ApproverPolicyError, match="set but empty"):
        ApproverPolicy.load("")


def test_allowed_signers_name_one_person_per_key(tmp_path) -> None:
    olga, cleo = (public_key(keypair(tmp_path, name)) for name in ("olga", "cleo"))

    def load(lines: str) -> ApproverPolicy:
        return ApproverPolicy.load(str(write(tmp_path, BASE + "allowed_signers: |\n" + lines)))

    policy = load(
        f'  olga@x.example valid-before="20270101" {olga}\n  # a comment\n  cleo@x.example {cleo}\n'
    )
    assert [s.principal for s in policy.signers] == ["olga@x.example", "cleo@x.example"]
    assert (
        policy.principal_of_key(olga) == "olga@x.example"
        and policy.principal_of_key(cleo + " x") == "cleo@x.example"
    )
    assert policy.describe().endswith("signatures required for protected groups; 2 signer key(s)")
    refusals = {
        f"  *@x.example {olga}\n": r"line 1: principal '\*@x.example' is a pattern or a list",
        f"  olga@x.example,cleo@x.example {olga}\n": "is a pattern or a list: name one person per line",
        f"  olga@x.example cert-authority {olga}\n": "cert-authority is not accepted",
        f"  olga@x.example {olga}\n  cleo@x.example {olga}\n": "line 2: this key is also listed for another",
        "  olga@x.example ssh-foo AAAA\n": "expected `principal \\[options\\] key-type key`",
    }
    for lines, problem in refusals.items():
        with pytest.raises(ApproverPolicyError, match=problem):
            load(lines)
    # One person under two names (an email and the account id it maps to) may hold one key.
    assert len(load(f"  olga@x.example {olga}\n  {OLGA} {olga}\n").signers) == 2


def test_retired_options_and_unknown_values_are_named(tmp_path) -> None:
    with pytest.raises(ApproverPolicyError, match="self_review: second_reviewer is no longer accepted"):
        ApproverPolicy.load(str(write(tmp_path, BASE + "self_review: second_reviewer\n")))
    with pytest.raises(
        ApproverPolicyError, match="require_signatures: 'sometimes' is not protected or always"
    ):
        ApproverPolicy.load(str(write(tmp_path, BASE + "require_signatures: sometimes\n")))
    always = ApproverPolicy.load(str(write(tmp_path, BASE + "require_signatures: always\n")))
    assert always.signature_required("developers", ()) and not ApproverPolicy().signature_required(
        "x", ("x",)
    )


def test_one_person_across_uuid_account_id_and_mapped_email(tmp_path) -> None:
    policy = ApproverPolicy.load(str(write(tmp_path, BASE)))
    people = People(policy, lambda: {OLGA_UUID.lower(): OLGA.lower()})
    assert people.same("Olga@X.example", OLGA_UUID) and people.same(OLGA_UUID.upper(), OLGA)
    assert not people.same("olga@x.example", "{0a0a0a0a-1111-4000-8000-0000000000bb}")
    request = {
        "approved_by": "olga@x.example",
        "requested_by": "ana@x.example",
        "user_id": OLGA_UUID,
        "workspace_slug": "w",
        "group_slug": "g",
    }
    assert policy.approval_problem(request, (), lambda ws, g: set(), people) == (
        "approved by the user whose access it changes (olga@x.example): nobody approves their own access"
    )
