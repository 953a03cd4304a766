"""The counter writer: applies stream records to the counter items exactly once, each chunk
in one transaction with a checkpoint conditioned on the last applied sequence number."""
from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from functools import lru_cache

from pynamodb.transactions import TransactWrite

from ...settings import Settings, get_settings
from ..dynamo_models import COUNTER_SK, Tables, bind_tables, status_attribute
from .deltas import Record, deltas, sequence

CHECKPOINT_SK = "CHECKPOINT"
MAX_TRANSACTION_ITEMS = 100
# Stream records live 24 h; a checkpoint only has to outlive every redelivery of them.
CHECKPOINT_TTL_S = 2 * 86400


def _chunks(records: Sequence[Record]) -> Iterable[list[Record]]:
    """Consecutive groups whose counters, plus the checkpoint, fit in one transaction."""
    chunk: list[Record] = []
    keys: set[str] = set()
    for record in records:
        touched = set(deltas([record]))
        if chunk and len(keys | touched) > MAX_TRANSACTION_ITEMS - 1:
            yield chunk
            chunk, keys = [], set()
        chunk.append(record)
        keys |= touched
    if chunk:
        yield chunk


class CounterWriter:
    """Applies stream records to the counters, exactly once per checkpoint id."""

    def __init__(self, settings: Settings, clock=time.time) -> None:
        self.tables: Tables = bind_tables(settings.runs_table, settings.region)
        self._clock = clock

    def applied_sequence(self, checkpoint_id: str) -> str | None:
        """The last sequence number applied under `checkpoint_id` (padded), or None."""
        model = self.tables.checkpoint
        try:
            return model.get(f"CHECKPOINT#{checkpoint_id}", CHECKPOINT_SK,
                             consistent_read=True).seq
        except model.DoesNotExist:
            return None

    def apply(self, records: Sequence[Record], checkpoint_id: str) -> int:
        """Apply the records not applied yet; returns how many were new."""
        last = self.applied_sequence(checkpoint_id)
        fresh = sorted((r for r in records if last is None or sequence(r) > last),
                       key=sequence)
        for chunk in _chunks(fresh):
            changes = deltas(chunk)
            if not changes:
                continue  # nothing to count: re-reading these later is harmless
            self._commit(checkpoint_id, last, sequence(chunk[-1]), changes)
            last = sequence(chunk[-1])
        return len(fresh)

    def _commit(self, checkpoint_id: str, previous: str | None, last_sequence: str,
                changes: dict[str, dict[str, int]]) -> None:
        # A concurrent writer moving the checkpoint fails this transaction; the error
        # propagates so the batch is retried, and the retry skips what is now applied.
        checkpoint, counter = self.tables.checkpoint, self.tables.counter
        guard = (checkpoint.seq.does_not_exist() if previous is None
                 else checkpoint.seq == previous)
        with TransactWrite(connection=self.tables.connection.connection) as transaction:
            transaction.update(
                checkpoint(f"CHECKPOINT#{checkpoint_id}", CHECKPOINT_SK),
                actions=[checkpoint.seq.set(last_sequence),
                         checkpoint.expires_at.set(int(self._clock()) + CHECKPOINT_TTL_S)],
                condition=guard)
            for key, by_status in sorted(changes.items()):
                actions = [getattr(counter, status_attribute(status)).add(delta)
                           for status, delta in sorted(by_status.items())]
                transaction.update(counter(key, COUNTER_SK), actions=actions)


@lru_cache(maxsize=1)
def _writer() -> CounterWriter:
    return CounterWriter(get_settings())


def apply_records(records: Sequence[Record], shard_id: str,
                  writer: CounterWriter | None = None) -> int:
    """Apply stream records of one shard exactly once (checkpoint per `shard_id`)."""
    return (writer or _writer()).apply(records, shard_id)
