"""Search by payload (issue 17): declared keys only, exact match, and never a way to find a
run by a secret (the index is built from the trigger data as stored, after redaction)."""
from __future__ import annotations

import pytest

from chalicelib.domain.errors import DefinitionError
from chalicelib.domain.model import RunFilter
from chalicelib.domain.search import search_key, search_keys
from chalicelib.services.runs import RunQuery, list_runs
from chalicelib.services.trigger import start_run
from tests.support.stack import catalog_from, memory_container

AUTOMATIONS = """
automations:
  - name: orders
    trigger: { type: manual }
    index: [orderId, customer, apiNonce]
    actions:
      - { name: a, type: data, operator: set, props: { value: 1 } }
  - name: other
    trigger: { type: manual }
    actions:
      - { name: a, type: data, operator: set, props: { value: 1 } }
"""
SECRET = "s3cr3t-partner-key"


@pytest.fixture
def deps(tmp_path, monkeypatch):
    monkeypatch.setenv("RUNS_SECRET_PARTNER", SECRET)
    return memory_container(catalog_from(tmp_path, AUTOMATIONS))


def _start(deps, name, data):
    return start_run(deps, deps.catalog.get(name), "manual", data, actor="test")


def _found(deps, key, value, **filters):
    page = list_runs(deps.repo, RunQuery(filter=RunFilter(data=(key, value), **filters),
                                         page_size=50))
    assert page.total == len(page.runs)
    return {run.id for run in page.runs}


def test_a_declared_key_finds_exactly_the_matching_runs(deps):
    first = _start(deps, "orders", {"orderId": "A-1", "customer": 7})
    second = _start(deps, "orders", {"orderId": "A-1", "customer": 8})
    _start(deps, "orders", {"orderId": "A-2"})
    _start(deps, "other", {"orderId": "A-1"})  # does not declare the key

    assert _found(deps, "orderId", "A-1") == {first.id, second.id}
    assert _found(deps, "customer", "7") == {first.id}
    assert _found(deps, "orderId", "A-1", automation_name="other") == set()
    assert _found(deps, "orderId", "a-1") == set()  # exact, case included


def test_a_secret_in_an_indexed_field_is_neither_stored_nor_findable(deps):
    leaky = _start(deps, "orders", {"orderId": "B-1", "apiNonce": SECRET,
                                    "customer": f"acme-{SECRET}"})
    stored = deps.repo.get_run(leaky.id)

    assert SECRET not in repr(stored.trigger_data)
    assert search_key("apiNonce", SECRET) not in stored.search_keys
    assert _found(deps, "apiNonce", SECRET) == set()
    assert _found(deps, "apiNonce", "[redacted]") == set()  # redacted values are not indexed
    assert _found(deps, "customer", f"acme-{SECRET}") == set()
    assert _found(deps, "orderId", "B-1") == {leaky.id}
    assert stored.search_keys == (search_key("orderId", "B-1"),)


def test_keys_set_by_a_caller_are_replaced_at_the_storage_boundary(deps):
    """Whatever a service puts in search_keys, the stored ones come from the stored data."""
    run = _start(deps, "orders", {"orderId": "C-1"})
    forged = run.evolve(id="forged-run", search_keys=(search_key("apiNonce", SECRET),),
                        trigger_data={"apiNonce": SECRET})
    deps.repo.create_run(forged)
    assert deps.repo.get_run("forged-run").search_keys == ()


def test_values_are_compared_as_text_and_only_scalars_are_indexed():
    keys = search_keys(["n", "flag", "obj", "none"], {"n": 12, "flag": True, "obj": {"a": 1},
                                                       "none": None})
    assert keys == (search_key("n", "12"), search_key("flag", "true"))


@pytest.mark.parametrize("index, message", [
    ("[a, b, c, d]", "at most 3 keys"),
    ("[order.id]", "not a top-level trigger-data key"),
    ("['items[0]']", "not a top-level trigger-data key"),
    ("[apiToken]", "named like a credential"),
    ("[a, a]", "duplicate key"),
])
def test_an_index_beyond_three_or_not_top_level_is_a_definition_error(tmp_path, index, message):
    text = f"""
automations:
  - name: bad
    trigger: {{ type: manual }}
    index: {index}
    actions:
      - {{ name: a, type: data, operator: set, props: {{ value: 1 }} }}
"""
    with pytest.raises(DefinitionError) as raised:
        catalog_from(tmp_path, text)
    assert "automation 'bad': index" in str(raised.value) and message in str(raised.value)
