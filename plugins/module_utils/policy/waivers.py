# PRIVATE to the collection: not a public API.
"""Policy exceptions (`exceptions:` entries): scoped, owned, expiring waivers of rules."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

from .scope import Scope


@dataclasses.dataclass
class Waiver:
    """One `exceptions:` entry. Named Waiver in code so it is not mistaken for a Python exception."""

    id: str
    rules: frozenset[str]
    scope: Scope
    reason: str
    owner: str
    # As written (for reports) and as the first instant it no longer applies.
    expires: Any
    expires_at: datetime.datetime
    source: str = ''
    line: int | None = None

    @property
    def expires_text(self) -> str:
        if isinstance(self.expires, (datetime.date, datetime.datetime)):
            return self.expires.isoformat()
        return str(self.expires)

    def is_expired(self, now: datetime.datetime) -> bool:
        return now >= self.expires_at

    def report(self, status: str) -> dict[str, Any]:
        return {
            'id': self.id,
            'status': status,
            'expires': self.expires_text,
            'reason': self.reason,
            'owner': self.owner,
        }
