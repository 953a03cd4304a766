"""Exact list counters kept from the runs table's stream (SPEC 7), one module per job:

- `deltas`: the net counter changes of stream records (pure);
- `writer`: applies them exactly once (a transaction with a checkpoint per chunk);
- `stream_handler`: the Lambda entry for the stream (a checkpoint per batch);
- `poller`: reads the stream directly, for the local stack and the tests.

Maintaining counters inside every status transaction would double each transition's write
units (transactions cost 2x) and add four counter items to it; bench/cost.py measures
the difference. Instead the stream (NEW_AND_OLD_IMAGES) feeds `apply_records`, which adds
the net change per counter in one transaction together with a checkpoint item conditioned on
the last applied sequence number, so a redelivered batch is applied exactly once.

Counter items: pk="COUNTER#<automation or *>#<triggerType or *>", sk="COUNTER", one number
per run status. Each run item change touches the four counters (auto, trigger), (auto, *),
(*, trigger) and (*, *).
"""
from __future__ import annotations

from .deltas import counter_keys, deltas
from .poller import StreamPoller, to_lambda_record
from .stream_handler import batch_checkpoint_id, process_stream_event
from .writer import CounterWriter, apply_records

__all__ = ["CounterWriter", "StreamPoller", "apply_records", "batch_checkpoint_id",
           "counter_keys", "deltas", "process_stream_event", "to_lambda_record"]
