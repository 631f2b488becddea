"""What the conversation's rules need of a tenant's settings (``switchboard_tenants``), read
once per decision from the tenant directory: the language, the keywords, the handoff deadline
and outcome, and for business-initiated templates the tenant's templates, account and number."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from switchboard_tenants import TenantRecord
from switchboard_tenants.models import DEFAULT_HANDOFF_DEADLINE_S, Template

from .keywords import Keywords, keywords_for

DEFAULT_LANGUAGE = "en"


@dataclass(frozen=True, slots=True)
class TenantPolicy:
    language: str | None
    keywords: Keywords
    handoff_deadline: timedelta | None  # None: a handoff waits for an operator for ever
    handoff_unclaimed: str  # "bot" (back to the bot) or "wait" (keep waiting)
    record: TenantRecord | None = None

    def template(self, name: str) -> Template | None:
        return self.record.template(name) if self.record else None

    @property
    def account_sid(self) -> str | None:
        return self.record.account_sid if self.record else None

    @property
    def first_number(self) -> str | None:
        return self.record.numbers[0] if self.record and self.record.numbers else None


def policy_of(record: TenantRecord | None) -> TenantPolicy:
    """The tenant's policy; the defaults for a tenant the directory does not know (yet)."""
    if record is None:
        return TenantPolicy(None, keywords_for(DEFAULT_LANGUAGE),
                            timedelta(seconds=DEFAULT_HANDOFF_DEADLINE_S), "bot")
    deadline = record.handoff_deadline_s
    return TenantPolicy(
        language=record.language,
        keywords=keywords_for(record.language, record.handoff_keywords,
                              record.opt_out_keywords, record.opt_in_keywords),
        handoff_deadline=timedelta(seconds=deadline) if deadline > 0 else None,
        handoff_unclaimed=record.handoff_unclaimed,
        record=record,
    )
