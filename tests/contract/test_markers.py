"""Markers and TokenStore contracts (memory twins and DynamoDB on moto)."""
from __future__ import annotations

import threading
from datetime import timedelta

from chalicelib.services.ports import TokenRecord

from tests.support.factories import BASE_TIME


class TestMarkers:
    def test_first_writer_wins_and_later_writers_see_its_value(self, backend):
        assert backend.markers.put_once("cron:nightly:2026-03-01T00:00", {"runId": "r1"}, 60) is None

        assert backend.markers.put_once("cron:nightly:2026-03-01T00:00", {"runId": "r2"}, 60) == {
            "runId": "r1"}
        assert backend.markers.get("cron:nightly:2026-03-01T00:00") == {"runId": "r1"}

    def test_unknown_marker_is_none(self, backend):
        assert backend.markers.get("nothing-here") is None

    def test_expired_marker_is_gone_and_can_be_taken_again(self, backend):
        backend.markers.put_once("idem:k1", {"runId": "r1"}, 10)
        backend.clock.advance(9)
        assert backend.markers.get("idem:k1") == {"runId": "r1"}

        backend.clock.advance(1)

        assert backend.markers.get("idem:k1") is None
        assert backend.markers.put_once("idem:k1", {"runId": "r2"}, 10) is None
        assert backend.markers.get("idem:k1") == {"runId": "r2"}

    def test_deleted_marker_lets_a_retry_proceed(self, backend):
        backend.markers.put_once("dedup:abc", {"runId": "failed"}, 300)

        backend.markers.delete("dedup:abc")

        assert backend.markers.get("dedup:abc") is None
        assert backend.markers.put_once("dedup:abc", {"runId": "retry"}, 300) is None

    def test_deleting_an_unknown_marker_is_harmless(self, backend):
        assert backend.markers.delete("never-written") is False
        assert backend.markers.get("never-written") is None

    def test_conditional_delete_removes_only_the_expected_value(self, backend):
        backend.markers.put_once("dedup", {"runId": "winner"}, 60)
        assert backend.markers.delete("dedup", only_if={"runId": "loser"}) is False
        assert backend.markers.get("dedup") == {"runId": "winner"}
        assert backend.markers.delete("dedup", only_if={"runId": "winner"}) is True
        assert backend.markers.get("dedup") is None

    def test_values_keep_their_json_types(self, backend):
        value = {"runId": "r1", "count": 3, "ratio": 0.25, "tags": ["x"], "nested": {"ok": True}}
        backend.markers.put_once("typed", value, 60)

        assert backend.markers.get("typed") == value

    def test_concurrent_writers_have_exactly_one_winner(self, backend):
        barrier = threading.Barrier(6)
        results = []

        def put(index):
            barrier.wait()
            results.append(backend.markers.put_once("race", {"writer": index}, 60))

        threads = [threading.Thread(target=put, args=(index,)) for index in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        winners = [result for result in results if result is None]
        assert len(winners) == 1
        assert {tuple(result.items()) for result in results if result} == {
            tuple(backend.markers.get("race").items())}


class TestTokenStore:
    def test_stored_token_is_found_by_its_hash(self, backend):
        record = TokenRecord(token_id="tok-1", role="operator", created_at=BASE_TIME,
                             description="CI pipeline")
        backend.tokens.put("a" * 64, record)

        assert backend.tokens.find("a" * 64) == record

    def test_unknown_hash_finds_nothing(self, backend):
        assert backend.tokens.find("b" * 64) is None

    def test_putting_the_same_hash_replaces_the_record(self, backend):
        backend.tokens.put("c" * 64, TokenRecord("tok-1", "viewer", BASE_TIME))
        backend.tokens.put("c" * 64, TokenRecord("tok-1", "admin", BASE_TIME))

        assert backend.tokens.find("c" * 64).role == "admin"

    def test_a_token_keeps_its_expiry(self, backend):
        expires = BASE_TIME + timedelta(days=30)
        backend.tokens.put("d" * 64, TokenRecord("tok-2", "viewer", BASE_TIME, "ci",
                                                 expires_at=expires))

        assert backend.tokens.find("d" * 64).expires_at == expires

    def test_tokens_are_listed_by_id_with_their_last_use(self, backend):
        backend.tokens.put("e" * 64, TokenRecord("tok-b", "viewer", BASE_TIME, "second"))
        backend.tokens.put("f" * 64, TokenRecord("tok-a", "admin", BASE_TIME, "first",
                                                 expires_at=BASE_TIME + timedelta(days=1)))
        used = BASE_TIME + timedelta(minutes=5)
        backend.tokens.touch("tok-b", used)

        listed = backend.tokens.list()
        assert [(t.token_id, t.description, t.role) for t in listed] == [
            ("tok-a", "first", "admin"), ("tok-b", "second", "viewer")]
        assert [t.last_used_at for t in listed] == [None, used]
        assert listed[0].expires_at == BASE_TIME + timedelta(days=1)

    def test_the_token_found_by_its_hash_knows_when_it_was_last_used(self, backend):
        """The authorizer writes "last used" at most once a minute, judged by what it finds."""
        backend.tokens.put("j" * 64, TokenRecord("tok-u", "viewer", BASE_TIME))
        assert backend.tokens.find("j" * 64).last_used_at is None
        used = BASE_TIME + timedelta(minutes=2)
        backend.tokens.touch("tok-u", used)

        assert backend.tokens.find("j" * 64).last_used_at == used

    def test_a_revoked_token_is_neither_found_nor_listed(self, backend):
        backend.tokens.put("g" * 64, TokenRecord("tok-r", "admin", BASE_TIME))
        backend.tokens.put("h" * 64, TokenRecord("tok-k", "admin", BASE_TIME))

        assert backend.tokens.revoke("tok-r") is True
        assert backend.tokens.find("g" * 64) is None
        assert [t.token_id for t in backend.tokens.list()] == ["tok-k"]
        assert backend.tokens.revoke("tok-r") is False

    def test_touching_a_revoked_token_does_not_bring_it_back(self, backend):
        backend.tokens.put("i" * 64, TokenRecord("tok-t", "admin", BASE_TIME))
        backend.tokens.revoke("tok-t")
        backend.tokens.touch("tok-t", BASE_TIME)

        assert backend.tokens.list() == [] and backend.tokens.find("i" * 64) is None
