"""Count every AWS request the code makes, and price DynamoDB requests in capacity units.

`AwsMeter.install()` adds two botocore event handlers to every botocore session created
after it (BUILTIN_HANDLERS, as moto itself hooks in): `before-call` counts the request by
service and operation and, for a DynamoDB write, takes the image of every item it may touch
from moto's backend; `after-call` takes the images again and computes the capacity units.

moto's `ConsumedCapacity` is a constant, not DynamoDB's figure, so units are computed from
item sizes by DynamoDB's rules (CapacityUnitCalculations): a write costs ceil(KB) of the
larger of the item before and after (a failed condition the size of the stored item), twice
inside a transaction; every global secondary index whose entry the write puts, changes or
deletes costs ceil(KB) of the entry (+100 bytes), two when its key moves (delete + put). A
read costs ceil(size / 4 KB) per item (GetItem, BatchGetItem) or per request over the items
it evaluated (Query), half when eventually consistent, twice in a transaction.

CPU spent inside moto (the fake service) is measured too, so callers can subtract it from the
CPU time of the code under test.
"""
from __future__ import annotations

import math
import threading
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import botocore.handlers

from . import prices

Image = dict[str, Any] | None


def value_size(value: dict) -> int:
    """Bytes of one attribute value, as DynamoDB sizes items."""
    (kind, inner), = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        digits = Decimal(inner).normalize().as_tuple().digits
        return math.ceil(len(digits) / 2) + 1
    if kind == "B":
        return len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "NS", "BS"):
        return sum(value_size({kind[0]: element}) for element in inner)
    if kind == "L":
        return 3 + sum(1 + value_size(element) for element in inner)
    if kind == "M":
        return 3 + sum(1 + len(key.encode()) + value_size(v) for key, v in inner.items())
    return len(str(inner))


def item_size(image: Image) -> int:
    return sum(len(name.encode()) + value_size(value) for name, value in (image or {}).items())


@dataclass(frozen=True)
class IndexShape:
    """One global secondary index: its key attributes and projected attributes."""

    name: str
    keys: tuple[str, ...]
    projected: tuple[str, ...] | None  # None: ALL

    def entry(self, image: Image, table_keys: tuple[str, ...]) -> dict | None:
        if not image or any(key not in image for key in self.keys):
            return None
        if self.projected is None:
            return dict(image)
        names = (*table_keys, *self.keys, *self.projected)
        return {name: image[name] for name in names if name in image}


def entry_units(entry: dict) -> int:
    return math.ceil((item_size(entry) + prices.INDEX_ENTRY_OVERHEAD_BYTES)
                     / prices.WRITE_UNIT_BYTES)


def index_changes(indexes: list[IndexShape], table_keys: tuple[str, ...],
                  old: Image, new: Image) -> list[tuple[str, str, int]]:
    """(index, what happened to its entry, write units) for one item change: `put`, `delete`,
    `update` (same key, a projected attribute changed) or `move` (key changed: delete + put)."""
    changes = []
    for index in indexes:
        before, after = index.entry(old, table_keys), index.entry(new, table_keys)
        if before == after:
            continue
        if before and after and all(before[k] == after[k] for k in index.keys):
            changes.append((index.name, "update", entry_units(after)))
        elif before and after:
            changes.append((index.name, "move", entry_units(before) + entry_units(after)))
        elif after:
            changes.append((index.name, "put", entry_units(after)))
        else:
            changes.append((index.name, "delete", entry_units(before)))
    return changes


def index_write_units(indexes: list[IndexShape], table_keys: tuple[str, ...],
                      old: Image, new: Image) -> int:
    """Write units the global secondary indexes consume for one item change."""
    return sum(units for _, _, units in index_changes(indexes, table_keys, old, new))


@dataclass(frozen=True)
class WriteTrace:
    """One item written by one request: what it was, and what it cost (table + indexes)."""

    operation: str
    item: str  # the sort key's kind: RUN, STEP#0002, MARK, COUNTER, CHECKPOINT, ...
    table_units: int
    indexes: tuple[tuple[str, str, int], ...]
    failed: bool = False

    @property
    def units(self) -> int:
        return self.table_units + sum(units for _, _, units in self.indexes)

    def describe(self) -> str:
        moves = ", ".join(f"{name} {what} {units}" for name, what, units in self.indexes)
        failed = " (condition failed)" if self.failed else ""
        return (f"{self.operation:<18} {self.item:<12} {self.units:>3} WCU = item "
                f"{self.table_units}{' + ' + moves if moves else ''}{failed}")


def _ceil_units(size: int, unit: int) -> int:
    return max(1, math.ceil(size / unit))


@dataclass
class Usage:
    """What a stretch of code cost: requests by service/operation, DynamoDB units, moto CPU."""

    requests: Counter = field(default_factory=Counter)
    write_units: float = 0.0  # table + index
    index_write_units: float = 0.0
    read_units: float = 0.0
    moto_cpu_s: float = 0.0

    def add(self, other: "Usage") -> None:
        self.requests.update(other.requests)
        self.write_units += other.write_units
        self.index_write_units += other.index_write_units
        self.read_units += other.read_units
        self.moto_cpu_s += other.moto_cpu_s

    def minus(self, other: "Usage") -> "Usage":
        requests = Counter(self.requests)
        requests.subtract(other.requests)
        return Usage(+requests, self.write_units - other.write_units,
                     self.index_write_units - other.index_write_units,
                     self.read_units - other.read_units, self.moto_cpu_s - other.moto_cpu_s)

    def copy(self) -> "Usage":
        return self.minus(Usage())

    def count(self, service: str) -> int:
        return sum(n for (svc, _), n in self.requests.items() if svc == service)

    def by_operation(self, service: str) -> dict[str, int]:
        return {op: n for (svc, op), n in sorted(self.requests.items()) if svc == service}


class AwsMeter:
    """Counts requests and DynamoDB units of every botocore client created after install()."""

    def __init__(self, region: str = "us-east-1") -> None:
        self.region = region
        self._hooks: list = []
        self.total = Usage()
        self._paused = 0
        self._pending = threading.local()
        self._moto_lock = threading.Lock()
        self.trace: list[WriteTrace] | None = None  # a list to record every item write

    @contextmanager
    def tracing(self):
        """Record every item write made inside (yields the list it fills)."""
        self.trace = writes = []
        try:
            yield writes
        finally:
            self.trace = None

    # --- hooks ----------------------------------------------------------------------------
    def install(self) -> "AwsMeter":
        """Hook every botocore session created from now on (and moto's request handling)."""
        self._hooks = [("before-parameter-build", _remember_params),
                       ("before-call", self._before), ("after-call", self._after)]
        botocore.handlers.BUILTIN_HANDLERS.extend(self._hooks)
        from moto.core.botocore_stubber import BotocoreStubber  # noqa: PLC0415

        self._original = original = BotocoreStubber.process_request
        meter = self

        def process_request(stub, request):
            started = time.process_time()
            try:
                return original(stub, request)
            finally:
                with meter._moto_lock:
                    meter.total.moto_cpu_s += time.process_time() - started

        BotocoreStubber.process_request = process_request
        return self

    def attach(self, client) -> "AwsMeter":
        """Count the requests of a client created before install() (moto CPU not timed)."""
        client.meta.events.register("before-parameter-build", _remember_params)
        client.meta.events.register("before-call", self._before)
        client.meta.events.register("after-call", self._after)
        return self

    def detach(self, client) -> None:
        client.meta.events.unregister("before-parameter-build", _remember_params)
        client.meta.events.unregister("before-call", self._before)
        client.meta.events.unregister("after-call", self._after)

    def uninstall(self) -> None:
        """Stop hooking new sessions (sessions made meanwhile keep counting)."""
        from moto.core.botocore_stubber import BotocoreStubber  # noqa: PLC0415

        for hook in self._hooks:
            botocore.handlers.BUILTIN_HANDLERS.remove(hook)
        BotocoreStubber.process_request = self._original

    @contextmanager
    def paused(self):
        """Requests made inside are not counted (the bench's own plumbing: stream reads,
        the SQS receives and deletes Lambda's event source would make)."""
        self._paused += 1
        try:
            yield
        finally:
            self._paused -= 1

    def snapshot(self) -> Usage:
        return self.total.copy()

    def _before(self, model, context, **_: Any) -> None:
        params = context.get("bench_params") or {}
        if self._paused:
            self._pending.images = None
            return
        service = model.service_model.service_name
        if service == "dynamodb" and model.name in WRITES:
            self._pending.images = [(target, self._image(target)) for target in
                                    _write_targets(model.name, params)]
        else:
            self._pending.images = None

    def _after(self, model, parsed, **kwargs: Any) -> None:
        if self._paused:
            return
        service = model.service_model.service_name
        self.total.requests[(service, model.name)] += 1
        if service != "dynamodb":
            return
        failed = "Error" in parsed
        params = kwargs.get("context", {}).get("bench_params")
        if model.name in WRITES:
            for target, old in getattr(self._pending, "images", None) or []:
                new = old if failed else self._image(target)
                table_units = _ceil_units(max(item_size(old), item_size(new)),
                                          prices.WRITE_UNIT_BYTES)
                if target.kind == "ConditionCheck":
                    new = old
                factor = 2 if model.name == "TransactWriteItems" else 1
                changes = [] if failed else index_changes(
                    self._indexes(target.table), self._table_keys(target.table), old, new)
                index_units = sum(units for _, _, units in changes)
                self.total.write_units += table_units * factor + index_units
                self.total.index_write_units += index_units
                if self.trace is not None:
                    self.trace.append(WriteTrace(
                        model.name if target.kind in ("Put", "UpdateItem", "DeleteItem")
                        else f"{model.name}:{target.kind}", _item_kind(target),
                        table_units * factor, tuple(changes), failed))
        elif model.name in READS:
            self.total.read_units += _read_units(model.name, parsed, params)

    # --- moto backend access --------------------------------------------------------------
    def _table(self, name: str):
        from moto.core import DEFAULT_ACCOUNT_ID  # noqa: PLC0415
        from moto.dynamodb.models import dynamodb_backends  # noqa: PLC0415

        return dynamodb_backends[DEFAULT_ACCOUNT_ID][self.region].get_table(name)

    def _image(self, target: "_Target") -> Image:
        from moto.dynamodb.models.dynamo_type import DynamoType  # noqa: PLC0415

        table = self._table(target.table)
        hash_name = table.hash_key_attr
        range_name = table.range_key_attr
        hash_key = DynamoType(target.key[hash_name])
        range_key = DynamoType(target.key[range_name]) if range_name else None
        try:
            item = table.get_item(hash_key, range_key)
        except KeyError:
            item = None
        return item.to_json()["Attributes"] if item is not None else None

    def _table_keys(self, name: str) -> tuple[str, ...]:
        table = self._table(name)
        return tuple(k for k in (table.hash_key_attr, table.range_key_attr) if k)

    def _indexes(self, name: str) -> list[IndexShape]:
        shapes = []
        for index in self._table(name).global_indexes:
            projection = index.projection or {}
            projected = None if projection.get("ProjectionType") == "ALL" else tuple(
                projection.get("NonKeyAttributes", []))
            shapes.append(IndexShape(index.name, tuple(index.schema_key_attrs), projected))
        return shapes


WRITES = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}
READS = {"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"}


@dataclass(frozen=True)
class _Target:
    kind: str
    table: str
    key: dict


def _item_kind(target: _Target) -> str:
    sort_key = next((v.get("S") for k, v in target.key.items() if k == "sk"), None)
    partition = next((v.get("S") for k, v in target.key.items() if k == "pk"), "") or ""
    if sort_key in (None, "RUN") or sort_key.startswith("STEP#"):
        return sort_key or "?"
    if sort_key == "MARK":  # pk "MARK#ended:<run id>": name the marker's kind
        return f"MARK {partition.split('#', 1)[-1].split(':', 1)[0]}"
    return sort_key


def _write_targets(operation: str, params: dict) -> list[_Target]:
    if operation == "PutItem":
        return [_Target("Put", params["TableName"], params["Item"])]
    if operation in ("UpdateItem", "DeleteItem"):
        return [_Target(operation, params["TableName"], params["Key"])]
    if operation == "TransactWriteItems":
        targets = []
        for entry in params["TransactItems"]:
            (kind, body), = entry.items()
            targets.append(_Target(kind, body["TableName"], body.get("Key") or body["Item"]))
        return targets
    targets = []
    for table, requests in params.get("RequestItems", {}).items():
        for request in requests:
            if "PutRequest" in request:
                targets.append(_Target("Put", table, request["PutRequest"]["Item"]))
            else:
                targets.append(_Target("Delete", table, request["DeleteRequest"]["Key"]))
    return targets


def _read_units(operation: str, parsed: dict, params: dict | None) -> float:
    if "Error" in parsed:
        return 0.0
    if operation == "GetItem":
        return _ceil_units(item_size(parsed.get("Item")), prices.READ_UNIT_BYTES) * \
            _consistency(params)
    if operation == "BatchGetItem":
        units = 0.0
        for table, items in parsed.get("Responses", {}).items():
            wanted = (params or {}).get("RequestItems", {}).get(table, {})
            half = 1.0 if wanted.get("ConsistentRead") else 0.5
            units += sum(_ceil_units(item_size(item), prices.READ_UNIT_BYTES) * half
                         for item in items)
        return units
    if operation == "TransactGetItems":
        return sum(2 * _ceil_units(item_size(r.get("Item")), prices.READ_UNIT_BYTES)
                   for r in parsed.get("Responses", []))
    # Query / Scan: one rounding over the items evaluated (before the filter expression).
    items = parsed.get("Items", [])
    evaluated = parsed.get("ScannedCount", len(items))
    size = sum(item_size(item) for item in items)
    if evaluated > len(items):
        average = size / len(items) if items else 150  # a projected index entry
        size += (evaluated - len(items)) * average
    return _ceil_units(int(size), prices.READ_UNIT_BYTES) * _consistency(params)


def _consistency(params: dict | None) -> float:
    return 1.0 if (params or {}).get("ConsistentRead") else 0.5


def _remember_params(params, context, **_: Any) -> None:
    """`before-parameter-build` hook: keep the API parameters (`before-call` sees the
    serialised request only)."""
    context["bench_params"] = params
