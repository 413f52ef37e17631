"""``/api/v1/rulesets``: named rule sets hosts are assigned to.

Admins write them; the Ansible controller may read them. A change applies to
a host from its next report on.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, status
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from wuacache_server import policy
from wuacache_server.api.deps import SessionDep, TokenDep, require_role
from wuacache_server.api.report_schemas import RuleSetBody, RuleSetPublic
from wuacache_server.api.schemas import Text
from wuacache_server.db.models import RuleSet, TokenRole
from wuacache_server.security import actor
from wuacache_server.services import audit

router = APIRouter(
    prefix="/rulesets",
    tags=["rule sets"],
    dependencies=[require_role(TokenRole.CONTROLLER)],
    responses={
        status.HTTP_401_UNAUTHORIZED: {"description": "No valid token."},
        status.HTTP_403_FORBIDDEN: {"description": "Neither an admin nor a controller token; writes need admin."},
    },
)
ADMIN_ONLY = [require_role()]
RuleSetName = Annotated[Text, Path(max_length=100)]
_INVALID: dict[int | str, dict[str, Any]] = {
    status.HTTP_422_UNPROCESSABLE_CONTENT: {"description": "The rules are not valid; the message says why."}
}


def _find(session: SessionDep, name: RuleSetName) -> RuleSet:
    record = session.scalars(select(RuleSet).where(RuleSet.name == name)).one_or_none()
    if record is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no rule set named {name!r}")
    return record


RuleSetDep = Annotated[RuleSet, Depends(_find)]
_NOT_FOUND: dict[int | str, dict[str, Any]] = {status.HTTP_404_NOT_FOUND: {"description": "No such rule set."}}


def _validated(body: RuleSetBody, name: str | None) -> policy.RuleSet:
    """The rule set as the policy reads it: entries checked and normalised; 422 otherwise."""
    values = body.model_dump(exclude_unset=True)
    if name is not None:
        if values.get("name", name) != name:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                f"the body names rule set {values['name']!r}, the URL {name!r}: rule sets cannot be renamed",
            )
        values["name"] = name
    try:
        return policy.RuleSet.from_dict(values)
    except policy.PolicyError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    dependencies=ADMIN_ONLY,
    responses={status.HTTP_409_CONFLICT: {"description": "A rule set has that name."}, **_INVALID},
)
def create(body: RuleSetBody, session: SessionDep, token: TokenDep) -> RuleSetPublic:
    """Create a rule set; lists left out are empty."""
    rule_set = _validated(body, None)
    record = RuleSet(**rule_set.to_dict())
    session.add(record)
    audit.record(session, actor(token), "ruleset.create", rule_set.name, rules=rule_set.to_dict())
    try:
        session.commit()
    except IntegrityError:  # the name is unique
        raise HTTPException(status.HTTP_409_CONFLICT, f"a rule set named {rule_set.name!r} exists already") from None
    return RuleSetPublic.model_validate(record, from_attributes=True)


@router.get("")
def list_all(session: SessionDep) -> list[RuleSetPublic]:
    """Every rule set, by name."""
    records = session.scalars(select(RuleSet).order_by(RuleSet.name))
    return [RuleSetPublic.model_validate(record, from_attributes=True) for record in records]


@router.get("/{name}", responses=_NOT_FOUND)
def get(record: RuleSetDep) -> RuleSetPublic:
    return RuleSetPublic.model_validate(record, from_attributes=True)


@router.put("/{name}", dependencies=ADMIN_ONLY, responses={**_NOT_FOUND, **_INVALID})
def replace(record: RuleSetDep, body: RuleSetBody, session: SessionDep, token: TokenDep) -> RuleSetPublic:
    """Replace a rule set's rules: lists left out become empty."""
    rules = _validated(body, record.name).to_dict()
    before = {field: getattr(record, field) for field in rules}
    for field, value in rules.items():
        setattr(record, field, value)
    audit.record(session, actor(token), "ruleset.replace", record.name, before=before, after=rules)
    session.commit()
    return RuleSetPublic.model_validate(record, from_attributes=True)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT, dependencies=ADMIN_ONLY, responses=_NOT_FOUND)
def remove(record: RuleSetDep, session: SessionDep, token: TokenDep) -> None:
    """Delete a rule set; hosts still assigned to it are told so in their next plan."""
    session.delete(record)
    audit.record(session, actor(token), "ruleset.delete", record.name)
    session.commit()
