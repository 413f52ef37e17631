"""Request and response bodies of the API, apart from the database models."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Self

from fastapi import Path
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from wuacache_server.config import Duration
from wuacache_server.db.models import TokenRole
from wuacache_server.security import normalise_host_name

# Ids are positive INTEGERs, 32-bit on PostgreSQL: a larger number is no row,
# but the database refuses it as a parameter rather than find none.
MAX_ID = 2**31 - 1
# More rows than any table holds, and an OFFSET every database takes.
MAX_OFFSET = 2**31 - 1

IdInPath = Annotated[int, Path(ge=1, le=MAX_ID)]


def refuse_nul(value: str) -> str:
    """``value``, unless it holds a NUL character, which PostgreSQL cannot store or compare."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


# Every string a request carries, in its body, query or path, is a Text.
Text = Annotated[str, AfterValidator(refuse_nul)]
HostName = Annotated[str, StringConstraints(max_length=253), AfterValidator(normalise_host_name)]


class Health(BaseModel):
    status: str = Field(description="`ok`, or `degraded` when the database cannot be reached.")
    version: str
    database: bool = Field(description="Whether the database answered.")


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[Text, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    role: TokenRole
    host_name: HostName | None = Field(default=None, description="The host a `host` token acts for.")
    expires_at: AwareDatetime | None = Field(
        default=None,
        description="When the token stops working. Host tokens always expire: by default after the "
        "server's host_token_lifetime; other tokens by default never.",
    )

    @model_validator(mode="after")
    def _host_name_for_host_role(self) -> Self:
        if (self.role is TokenRole.HOST) != (self.host_name is not None):
            raise ValueError("host_name is required for a host token, and only for one")
        return self


class TokenPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    role: TokenRole
    host_name: str | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    expires_at: datetime | None


class TokenRotate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grace: Duration = Field(
        default=timedelta(0),
        ge=timedelta(0),
        le=timedelta(days=30),
        description="How long the old secret keeps working, e.g. 1h or 7d: the time to hand the new one over.",
    )


class TokenCreated(TokenPublic):
    token: str = Field(description="The secret, shown this once: only its hash is stored.")
