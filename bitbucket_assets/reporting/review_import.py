"""Importing a completed access review: the reviewer's signed decisions become attestations and requests.

A file holds one reviewer's decisions. With an approver policy, the reviewer is whoever signed the file (a
detached OpenSSH signature beside it, `FILE.sig`, under the review namespace, checked against the policy's
`allowed_signers`): a `reviewer` cell that names someone else is refused. Without a policy nothing can be
checked, the `reviewer` cells name the reviewer (one person per file) and every surface says that no policy is
set.

Only rows of a known campaign, due later than now, whose item and evidence columns are unchanged are accepted;
a decision about access that changed after the export (a newer approved request, a path added or removed in a
later snapshot) is refused, naming the change; an item a campaign already holds a different decision for is
refused; nobody decides on their own access, `keep` as well as `revoke`. Anything refused is named by line and
column, and nothing is imported.

Every decision is recorded (`provisioning.review_decisions`, with the file's SHA-256; the file and its
signature in `provisioning.review_files`), and every `revoke` becomes approved `remove` requests for the group
memberships behind the access (approver = reviewer, checked against the approver policy; the request carries
the file's SHA-256, and provisioning checks the signed file again before applying it). Paths a group removal
cannot take away (direct or project grants, workspace ownership) are listed for a person to remove in
Bitbucket. Request ids derive from the campaign and the item, so files with the same name never collide and
importing a file twice creates nothing new.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd

from .. import signing
from ..provisioning.approvals import ApproverPolicy, People, snapshot_group_members, snapshot_people
from ..provisioning.requests_import import write_requests
from ..provisioning.signed_requests import SignatureCheck
from ..provisioning.tables import create_provisioning_tables
from ..settings import DEFAULT_PROTECTED_GROUPS, DEFAULT_REVIEW_DUE_DAYS, DEFAULT_REVIEW_MAX_ROWS
from .review import EVIDENCE, REVOCATION, comparable
from .review_files import ReviewFile, ReviewImportError, review_rows
from .revoke_impact import Removal, describe, removal_losses

DECISIONS = ("keep", "revoke", "")
IMPORT_COLUMNS = (*EVIDENCE, "reviewer", "decision", "campaign_id")  # what an import needs in the file
SIGNATURE_SUFFIX = ".sig"  # `ssh-keygen -Y sign FILE` writes FILE.sig


@dataclass
class ReviewImport:
    """What a review file decided, and what importing it did."""

    file: ReviewFile
    reviewer: str = ""
    key_fingerprint: str | None = None  # None: unsigned (no approver policy)
    decisions: list[dict] = field(default_factory=list)  # attestations new to the warehouse
    repeated: int = 0  # decisions the warehouse already held from an earlier import
    requests: list[dict] = field(default_factory=list)
    manual: list[str] = field(default_factory=list)  # revocations a group removal cannot carry out
    # per removal a revoke makes: who leaves which group, and what else that takes away (revoke_impact.py)
    impact: list[str] = field(default_factory=list)
    request_lines: dict[str, int] = field(default_factory=dict)  # request id -> the file line that made it
    kept: int = 0
    revoked: int = 0
    created: int = 0  # requests new to the warehouse (the others were imported before)


def signature_beside(path: Path) -> str | None:
    """The detached signature `ssh-keygen -Y sign` writes beside a file (FILE.sig), if there is one."""
    candidate = path.with_name(path.name + SIGNATURE_SUFFIX)
    try:
        return candidate.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def sign_review(path: Path, private_key: str | Path) -> Path:
    """Sign a completed review file as its reviewer: FILE.sig beside it, as `ssh-keygen -Y sign -n
    bitbucket-access-review -f KEY FILE` writes it."""
    signature = signing.sign(path.read_bytes(), private_key, signing.NAMESPACES["review"])
    target = path.with_name(path.name + SIGNATURE_SUFFIX)
    target.write_text(signature, encoding="utf-8")
    return target


def plan_review_import(
    con: duckdb.DuckDBPyConnection,
    file: ReviewFile,
    signature: str | None = None,
    now: datetime | None = None,
    approvals: ApproverPolicy | None = None,
    protected: tuple[str, ...] = DEFAULT_PROTECTED_GROUPS,
    max_rows: int = DEFAULT_REVIEW_MAX_ROWS,
) -> ReviewImport:
    """Check a review file against the warehouse (read only) and say what importing it records and requests.
    Raises `ReviewImportError` naming every line that cannot be accepted."""
    now = now or datetime.now(UTC)
    approvals = approvals or ApproverPolicy()
    members, people = snapshot_group_members(con), snapshot_people(con, approvals)
    out, problems = ReviewImport(file), []
    if approvals.configured:
        if not signature:
            raise ReviewImportError(
                f"{file.name}: not signed: the reviewer signs the completed file (`bitbucket-access review "
                f"sign {file.name} --key KEY`, which writes {file.name}{SIGNATURE_SUFFIX} beside it); "
                "nothing imported"
            )
        try:
            signer = approvals.signer(file.content, signature, "review", at=now)
        except signing.SignatureError as exc:
            raise ReviewImportError(
                f"{file.name}: review signature refused: {exc}; nothing imported"
            ) from None
        out.reviewer, out.key_fingerprint = signer.principal, signer.fingerprint
    decided: list[tuple[int, dict, str]] = []
    for line, row in review_rows(file, IMPORT_COLUMNS, max_rows):
        decision = (row.get("decision") or "").strip().lower()
        if decision not in DECISIONS:
            problems.append(f"line {line}: decision: {decision!r} is not keep or revoke")
        elif decision:
            decided.append((line, row, decision))
    campaigns = _campaigns(con, {row.get("campaign_id") or "" for _, row, _ in decided})
    items = _campaign_items(con, set(campaigns))
    earlier = _earlier_decisions(con, set(campaigns))
    changes = _changes_since_export(con, campaigns, people)
    for line, row, decision in decided:
        problem = _tampering(row, items) or _reviewer_problem(out, row, approvals, people)
        if problem:
            problems.append(f"line {line}: {problem}")
            continue
        campaign_id, item = row["campaign_id"], row["review_item"]
        before = earlier.get((campaign_id, item))
        if before is not None:
            if before["decision"] == decision and people.same(before["reviewer"], out.reviewer):
                # Imported before (this file, or an earlier one with the same decision): nothing new is
                # decided; its requests are named again, and found in place.
                out.repeated += 1
                if decision == "revoke":
                    exported = items[campaign_id][item]
                    _revocation(out, row, exported, line, now, approvals, protected, members, people)
                continue
            problems.append(
                f"line {line}: decision: campaign {campaign_id} already holds {before['decision']!r} for "
                f"this item, by {before['reviewer']} (file {before['file_sha256'][:12]}): one decision per "
                "item"
            )
            continue
        problem = (
            _due_problem(campaigns[campaign_id], now)
            or _own_access_problem(out.reviewer, row, approvals, people)
            or approvals.reviewer_problem(row["workspace_slug"], out.reviewer, members, people)
            or changes.get((campaign_id, item))
        )
        if problem:
            problems.append(f"line {line}: {problem}")
            continue
        out.decisions.append(
            {
                "campaign_id": campaign_id,
                "review_item": item,
                "decision": decision,
                "comment": (row.get("comment") or "").strip() or None,
                "reviewer": out.reviewer,
                "key_fingerprint": out.key_fingerprint,
                "decided_at": now,
                "file_sha256": file.sha256,
                "file_line": line,
            }
        )
        if decision == "keep":
            out.kept += 1
            continue
        out.revoked += 1
        problem = _revocation(
            out, row, items[campaign_id][item], line, now, approvals, protected, members, people
        )
        if problem:
            problems.append(f"line {line}: reviewer: {problem}")
    if problems:
        raise ReviewImportError(
            f"{file.name}: {len(problems)} problem(s), nothing imported:\n  " + "\n  ".join(problems)
        )
    out.impact = removal_impact(con, out)
    return out


def _reviewer_problem(out: ReviewImport, row: dict, approvals: ApproverPolicy, people: People) -> str | None:
    """The reviewer of every decision is the file's one reviewer: its signer, or (unsigned) the person the
    first decided row names."""
    named = (row.get("reviewer") or "").strip()
    if out.key_fingerprint is not None:
        if named and not people.same(named, out.reviewer):
            return (
                f"reviewer: {named!r} is not the file's signer {out.reviewer!r}: a file holds its signer's "
                "decisions"
            )
        return None
    if not named:
        return "reviewer: required for a decision (no approver policy: it cannot be taken from a signature)"
    if not out.reviewer:
        out.reviewer = named
    elif not people.same(named, out.reviewer):
        return f"reviewer: {named!r}, but this file's decisions are {out.reviewer!r}'s: one reviewer per file"
    return None


def _own_access_problem(reviewer: str, row: dict, approvals: ApproverPolicy, people: People) -> str | None:
    if approvals.configured and not approvals.is_bitbucket_identity(reviewer):
        return (
            f"reviewer: {reviewer!r} is neither an account id nor an email mapped to one in the identities "
            f"of {approvals.source}: a reviewer must be someone the tool can compare with Bitbucket users"
        )
    user = people.key(row.get("user_uuid"))
    if people.key(reviewer) in {user, people.key(row.get("user_account_id"))} - {""}:
        return f"reviewer: {reviewer!r} may not decide on their own access (keep or revoke)"
    return None


def _due_problem(campaign: dict, now: datetime) -> str | None:
    due = campaign["due_at"] or campaign["created_at"] + timedelta(days=DEFAULT_REVIEW_DUE_DAYS)
    if now > due:
        return (
            f"campaign_id: campaign {campaign['campaign_id']} ended on {due:%Y-%m-%d %H:%M} UTC: decisions "
            "after it are refused; export a new campaign"
        )
    return None


def _revocation(
    out: ReviewImport,
    row: dict,
    exported: dict,
    line: int,
    now: datetime,
    approvals: ApproverPolicy,
    protected: tuple[str, ...],
    members,
    people: People,
) -> str | None:
    """The approved removals a revoke makes (one per group behind the access), and what a person must
    remove."""
    campaign_id = row["campaign_id"]
    ws, kind, key = row["workspace_slug"], row["resource_type"], row["resource_key"]
    groups, outside = exported["removable_via_groups"], exported["paths_outside_groups"]
    if groups is None or outside is None:
        return (
            f"campaign {campaign_id} was exported by an older version that did not record what a revoke "
            "removes; export a new campaign"
        )
    for part in outside:
        out.manual.append(
            f"line {line}: {row['user_display_name']} on {kind} {ws}/{key}: {part} (remove in Bitbucket)"
        )
    reason = f"access review {campaign_id} ({out.file.name}, line {line}): revoke {kind} {key}" + (
        f" ({row.get('comment')})" if row.get("comment") else ""
    )
    for group in groups:
        request = revocation_request(campaign_id, row, group, out.reviewer, now, reason, out.file.sha256)
        problem = approvals.approval_problem(request, protected, members, people)
        if problem:
            return problem
        out.requests.append(request)
        out.request_lines.setdefault(request["request_id"], line)
    return None


def removal_impact(con: duckdb.DuckDBPyConnection, plan: ReviewImport) -> list[str]:
    """One line per removal the plan's revokes make: who leaves which group, by name, and everything else that
    removal takes away in the newest snapshot (or that it takes nothing else)."""
    from ..provisioning.names import names_for

    removals = {
        r["request_id"]: Removal(r["workspace_slug"], r["user_id"], r["group_slug"]) for r in plan.requests
    }
    losses = removal_losses(con, removals.values())
    users = {r.user_id for r in removals.values()}
    names = names_for(con, users, {(r.workspace_slug, r.group_slug) for r in removals.values()})
    lines = []
    for request_id, removal in removals.items():
        lost = losses[removal]
        lines.append(
            f"line {plan.request_lines.get(request_id, '?')}: {names.person(removal.user_id)} leaves "
            f"{names.group(removal.workspace_slug, removal.group_slug)} in "
            f"{names.workspace(removal.workspace_slug)}: "
            + (f"also loses {describe(lost)}" if lost else "nothing else (every other access remains)")
        )
    return lines


def revocation_request(
    campaign_id: str, row: dict, group: str, reviewer: str, now: datetime, reason: str, file_sha256: str
) -> dict:
    """The approved removal a revoke of `row` makes for `group`: its id derives from the campaign, the item
    and the group, so importing a file twice creates nothing new."""
    item = hashlib.sha256(row["review_item"].encode()).hexdigest()[:12]
    return {
        "request_id": f"review-{campaign_id}-{item}-{group}",
        "workspace_slug": row["workspace_slug"],
        "group_slug": group,
        "user_id": row["user_uuid"],
        "action": "remove",
        "requested_by": f"access-review:{campaign_id}",
        "approved_by": reviewer,
        "approved_at": now,
        "expires_at": None,
        "reason": reason,
        "allow_protected": False,
        "approval_ref": f"access review campaign {campaign_id}",
        "review_file_sha256": file_sha256,
    }


# ---- what the warehouse holds ----


def _campaigns(con, campaign_ids: set[str]) -> dict[str, dict]:
    wanted = sorted(c for c in campaign_ids if c)
    if not wanted:
        return {}
    return {
        r["campaign_id"]: r
        for r in _rows(
            con,
            "select campaign_id, created_at, due_at, workspace_slug from provisioning.review_campaigns "
            f"where campaign_id in ({', '.join('?' * len(wanted))})",
            wanted,
        )
    }


def _campaign_items(con, campaign_ids: set[str]) -> dict[str, dict[str, dict]]:
    """campaign id -> review item -> the evidence registered at export."""
    if not campaign_ids:
        return {}
    wanted = sorted(campaign_ids)
    out: dict[str, dict[str, dict]] = {}
    for record in _rows(
        con,
        f"select campaign_id, {', '.join((*EVIDENCE, *REVOCATION))} from provisioning.review_items "
        f"where campaign_id in ({', '.join('?' * len(wanted))})",
        wanted,
    ):
        out.setdefault(record.pop("campaign_id"), {})[record["review_item"]] = record
    return out


def _earlier_decisions(con, campaign_ids: set[str]) -> dict[tuple[str, str], dict]:
    if not campaign_ids:
        return {}
    wanted = sorted(campaign_ids)
    rows = _rows(
        con,
        "select campaign_id, review_item, decision, reviewer, file_sha256 from provisioning.review_decisions "
        f"where campaign_id in ({', '.join('?' * len(wanted))})",
        wanted,
    )
    return {(r["campaign_id"], r["review_item"]): r for r in rows}


def _changes_since_export(con, campaigns: dict[str, dict], people: People) -> dict[tuple[str, str], str]:
    """(campaign, item) -> how its access changed after the campaign was exported: a newer approved request
    on a group behind it (not this campaign's own), or a grant path a later snapshot added or removed."""
    out: dict[tuple[str, str], str] = {}
    for campaign_id, campaign in campaigns.items():
        items = {
            (r["workspace_slug"], r["resource_type"], r["resource_key"], r["user_uuid"]): r
            for r in _rows(
                con,
                "select review_item, workspace_slug, resource_type, resource_key, user_uuid, "
                "removable_via_groups from provisioning.review_items where campaign_id = ?",
                [campaign_id],
            )
        }
        since = campaign["created_at"]
        paths = _rows(
            con,
            "select workspace_slug, resource_type, resource_key, principal_id, change, grant_source, "
            "via_group_slug, via_project_key, changed_at from marts.fct_access_changes "
            "where principal_type = 'user' and changed_at > ? order by changed_at",
            [since],
        )
        for path in paths:
            item = items.get(
                (path["workspace_slug"], path["resource_type"], path["resource_key"], path["principal_id"])
            )
            if item is not None:
                via = (
                    f" via group {path['via_group_slug']}"
                    if path["via_group_slug"]
                    else f" via project {path['via_project_key']}"
                    if path["via_project_key"]
                    else ""
                )
                out.setdefault(
                    (campaign_id, item["review_item"]),
                    f"access changed after the export: a {path['grant_source']} path{via} was "
                    f"{path['change']} in the snapshot of {path['changed_at']:%Y-%m-%d %H:%M} UTC; decide "
                    "it in a new campaign",
                )
        requests = _rows(
            con,
            "select request_id, workspace_slug, group_slug, user_id, action, approved_at "
            "from provisioning.access_requests where approved_at > ? and status not in ('rejected', "
            "'failed') and not starts_with(request_id, ?) order by approved_at",
            [since, f"review-{campaign_id}-"],
        )
        by_user: dict[tuple[str, str], list[dict]] = {}
        for item in items.values():
            by_user.setdefault((item["workspace_slug"], people.key(item["user_uuid"])), []).append(item)
        for request in requests:
            for item in by_user.get((request["workspace_slug"], people.key(request["user_id"])), []):
                behind = set(item["removable_via_groups"] or []) | (
                    {item["resource_key"]} if item["resource_type"] == "group" else set()
                )
                if request["group_slug"] in behind:
                    out.setdefault(
                        (campaign_id, item["review_item"]),
                        f"access changed after the export: request {request['request_id']} "
                        f"({request['action']} in group {request['group_slug']}, approved "
                        f"{request['approved_at']:%Y-%m-%d %H:%M} UTC); decide it in a new campaign",
                    )
    return out


def _tampering(row: dict, items: dict[str, dict[str, dict]]) -> str | None:
    """Why this row is not a row of its campaign as exported, or None."""
    campaign_id = (row.get("campaign_id") or "").strip()
    if not campaign_id:
        return "campaign_id: empty: only rows of an exported review campaign can be imported"
    if campaign_id not in items:
        return f"campaign_id: {campaign_id!r} is not a review campaign of this warehouse"
    exported = items[campaign_id].get(row.get("review_item") or "")
    if exported is None:
        return f"review_item: not in campaign {campaign_id} (a row that was never exported)"
    for column in EVIDENCE:
        if comparable(row.get(column)) != (exported[column] or ""):
            return f"{column}: changed since campaign {campaign_id} was exported"
    return None


# ---- recording ----


def record_review_import(
    con: duckdb.DuckDBPyConnection, plan: ReviewImport, signature: str | None
) -> ReviewImport:
    """Record the file, its decisions and the requests its revokes make, in one transaction. A decision
    another import recorded meanwhile for the same item refuses the whole file."""
    create_provisioning_tables(con)
    con.execute("BEGIN TRANSACTION")
    try:
        earlier = _earlier_decisions(con, {d["campaign_id"] for d in plan.decisions})
        clashes = [d for d in plan.decisions if (d["campaign_id"], d["review_item"]) in earlier]
        if clashes:
            raise ReviewImportError(
                f"{plan.file.name}: line {clashes[0]['file_line']}: decision: another import decided this "
                "item meanwhile; import the file again to see why; nothing imported"
            )
        # The plan was checked on a read-only connection: access that changed since (a request approved or
        # a snapshot published in between) refuses the file as it would have then. Request users are
        # {uuid}s or account ids, so the snapshot's links compare them without the policy's emails.
        people = snapshot_people(con, ApproverPolicy())
        changes = _changes_since_export(
            con, _campaigns(con, {d["campaign_id"] for d in plan.decisions}), people
        )
        changed = [d for d in plan.decisions if (d["campaign_id"], d["review_item"]) in changes]
        if changed:
            first = changed[0]
            raise ReviewImportError(
                f"{plan.file.name}: line {first['file_line']}: "
                f"{changes[(first['campaign_id'], first['review_item'])]} (meanwhile); nothing imported"
            )
        if plan.decisions or plan.requests:
            con.execute(
                "insert or ignore into provisioning.review_files values (?, ?, ?, ?, ?, ?, ?)",
                [
                    plan.file.sha256,
                    plan.file.name,
                    plan.file.content,
                    signature if plan.key_fingerprint else None,
                    plan.reviewer,
                    plan.key_fingerprint,
                    plan.decisions[0]["decided_at"] if plan.decisions else datetime.now(UTC),
                ],
            )
        if plan.decisions:
            decisions = pd.DataFrame(plan.decisions, dtype=object)  # noqa: F841 - read by the SQL below
            columns = ", ".join(plan.decisions[0])
            con.execute(
                f"insert into provisioning.review_decisions ({columns}) select {columns} from decisions"
            )
        plan.created = write_requests(con, plan.requests, skip_existing=True)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return plan


def import_review(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    now: datetime | None = None,
    approvals: ApproverPolicy | None = None,
    protected: tuple[str, ...] = DEFAULT_PROTECTED_GROUPS,
    signature: str | None = None,
    max_rows: int = DEFAULT_REVIEW_MAX_ROWS,
) -> ReviewImport:
    """Plan and record a review file on one connection (the CLI plans on a read-only one first, so that the
    writer's lock is held only while recording). `signature`: default, the FILE.sig beside it."""
    file = ReviewFile.read(path)
    signature = signature if signature is not None else signature_beside(path)
    plan = plan_review_import(con, file, signature, now, approvals, protected, max_rows)
    return record_review_import(con, plan, signature)


# ---- provisioning's second look ----


def review_request_proof(
    con: duckdb.DuckDBPyConnection, request: dict, policy: ApproverPolicy, people: People, cache: dict
) -> SignatureCheck:
    """Whether the signed review file a request names proves it: the file kept in the warehouse still has its
    digest, its signature is its reviewer's (the request's approver), and one of its rows revokes exactly
    this membership (the group among the groups that row shows). `cache` keeps each file's reading for a
    run."""
    digest = request["review_file_sha256"]
    if digest not in cache:
        cache[digest] = _read_signed_file(con, digest, policy)
    found = cache[digest]
    if isinstance(found, str):
        return SignatureCheck(found)
    signer, revokes = found
    if request.get("approved_by") and not people.same(request["approved_by"], signer.principal):
        return SignatureCheck(
            f"approved_by names {request['approved_by']!r}, but review file {digest[:12]} is signed by "
            f"{signer.principal!r}"
        )
    row = revokes.get(request["request_id"])
    if row is None:
        return SignatureCheck(
            f"review file {digest[:12]} (signed by {signer.principal}) makes no such request"
        )
    expected = {"workspace_slug": row["workspace_slug"], "user_id": row["user_uuid"], "action": "remove"}
    changed = [name for name, value in expected.items() if request.get(name) != value]
    if request.get("expires_at") is not None or request.get("allow_protected"):
        changed.append("expires_at/allow_protected")
    if changed:
        return SignatureCheck(
            f"{', '.join(changed)}: not what review file {digest[:12]} (signed by {signer.principal}) decided"
        )
    return SignatureCheck(signer=signer)


def _read_signed_file(con, digest: str, policy: ApproverPolicy):
    """(signer, request id -> the revoking row) of a stored review file, or why it proves nothing."""
    stored = _rows(
        con,
        "select file_name, content, signature, imported_at from provisioning.review_files "
        "where file_sha256 = ?",
        [digest],
    )
    if not stored:
        return f"review file {digest[:12]} is not in the warehouse (provisioning.review_files)"
    file = ReviewFile(stored[0]["file_name"], bytes(stored[0]["content"]))
    if file.sha256 != digest:
        return (
            f"review file {digest[:12]} was altered in the warehouse (its SHA-256 is now {file.sha256[:12]})"
        )
    try:
        signer = policy.signer(
            file.content, stored[0]["signature"] or "", "review", at=stored[0]["imported_at"]
        )
    except signing.SignatureError as exc:
        return f"review file {digest[:12]}: signature refused: {exc}"
    revokes = {}
    try:
        for _, row in review_rows(file, IMPORT_COLUMNS, DEFAULT_REVIEW_MAX_ROWS):
            if (row.get("decision") or "").strip().lower() != "revoke":
                continue
            groups = {g.strip() for g in (row.get("groups") or "").split(",") if g.strip()}
            if row.get("resource_type") == "group":
                groups.add(row.get("resource_key") or "")
            for group in groups:
                request = revocation_request(
                    row.get("campaign_id") or "", row, group, "", datetime.now(UTC), "", digest
                )
                revokes[request["request_id"]] = row
    except ReviewImportError as exc:
        return f"review file {digest[:12]} cannot be read again: {exc}"
    return signer, revokes


def _rows(con, sql: str, params: Iterable | None = None) -> list[dict]:
    """The rows of a query as dicts; none when the provisioning tables do not exist yet (a warehouse opened
    read-only before any campaign was exported)."""
    try:
        cursor = con.execute(sql, list(params or []))
    except duckdb.CatalogException:
        return []
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def read_review(path: Path, max_rows: int = DEFAULT_REVIEW_MAX_ROWS) -> list[tuple[int, dict]]:
    """Every row of a review file with its line (`review_rows`, collected)."""
    return list(review_rows(ReviewFile.read(path), IMPORT_COLUMNS, max_rows, str(path)))
