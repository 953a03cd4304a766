"""Webhook rate limits on DynamoDB: one item per bucket, pk="RATE#<key>", sk="RATE", holding
the GCRA arrival time `tat` (epoch µs; domain/rate_limit.py) and `expiresAt` for the TTL.

No read-then-write: each request is one conditional UpdateItem that only succeeds in the case
it was written for, and a failed one returns the stored item (ALL_OLD) to choose the next.
  refill:  bucket absent or full (tat <= now)          → tat = now + interval
  take:    now < tat <= now + tolerance (tokens left)   → tat = tat + interval
  refuse:  tat > now + tolerance                        → nothing written
With `now` fixed for the call, tat can only grow once above it, so a take follows at most one
failed refill and a refill at most one failed take: three requests at the very most.
"""
from __future__ import annotations

from pynamodb.constants import ALL_OLD

from ..domain.rate_limit import Allowance, Verdict, expiry_s, refused
from ..settings import Settings
from .dynamo_models import Tables, bind_tables
from .dynamo_repository import ConditionFailed, conditional

RATE_SK = "RATE"
MAX_REQUESTS = 3


class DynamoRateLimiter:
    """RateLimiter port on the runs table."""

    def __init__(self, settings: Settings) -> None:
        self.tables: Tables = bind_tables(settings.runs_table, settings.region)

    @property
    def client(self):
        """The botocore client every request goes through (to count requests)."""
        return self.tables.client

    def take(self, key: str, allowance: Allowance, now_us: int) -> Verdict:
        model = self.tables.rate_bucket
        item = model(f"RATE#{key}", RATE_SK)
        ceiling = now_us + allowance.tolerance_us
        refill = True  # most webhooks arrive to a full bucket
        for _ in range(MAX_REQUESTS):
            if refill:
                tat = now_us + allowance.interval_us
                actions = [model.tat.set(tat), model.expires_at.set(expiry_s(tat))]
                condition = model.tat.does_not_exist() | (model.tat <= now_us)
            else:
                actions = [model.tat.add(allowance.interval_us),
                           model.expires_at.set(expiry_s(ceiling + allowance.interval_us))]
                condition = (model.tat > now_us) & (model.tat <= ceiling)
            kwargs = item.get_update_kwargs_from_instance(
                actions=actions, condition=condition,
                return_values_on_condition_failure=ALL_OLD)
            try:
                conditional(self.client.update_item, kwargs)
            except ConditionFailed as exc:
                stored = int(model.from_raw_data(exc.item).tat) if exc.item else None
                if stored is not None and stored > ceiling:
                    return refused(stored, now_us, allowance)
                refill = stored is None or stored <= now_us
                continue
            return Verdict(True)
        # Only reachable when clocks disagree by more than the bucket moves: refuse briefly.
        return Verdict(False, 1)
