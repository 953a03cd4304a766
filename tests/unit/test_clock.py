"""One timestamp format everywhere: UTC, milliseconds (truncated), 'Z', fixed width."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from chalicelib.domain.clock import iso, parse_iso


def test_iso_is_utc_milliseconds_truncated_with_a_z():
    at = datetime(2026, 1, 2, 3, 4, 5, 678999, tzinfo=timezone.utc)
    assert iso(at) == "2026-01-02T03:04:05.678Z"
    assert iso(at.replace(microsecond=0)) == "2026-01-02T03:04:05.000Z"
    assert iso(at.astimezone(timezone(timedelta(hours=5)))) == "2026-01-02T03:04:05.678Z"
    assert iso(None) is None


def test_iso_has_a_fixed_width_so_text_order_is_time_order():
    early, late = datetime(999, 1, 1, tzinfo=timezone.utc), datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert len(iso(early)) == len(iso(late)) == 24 and iso(early) < iso(late)


def test_parse_iso_gives_aware_utc_for_z_offsets_and_naive_text():
    for text, expected in [
        ("2026-01-02T03:04:05.678Z", datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)),
        ("2026-01-02T05:04:05.678+02:00",
         datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)),
        ("2026-01-02T03:04:05", datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)),
    ]:
        parsed = parse_iso(text)
        assert parsed == expected and parsed.utcoffset() == timedelta(0)
    assert parse_iso(iso(datetime(2026, 5, 6, 7, 8, 9, 10000, tzinfo=timezone.utc))) == \
        datetime(2026, 5, 6, 7, 8, 9, 10000, tzinfo=timezone.utc)
    assert parse_iso(None) is None
