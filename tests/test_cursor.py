"""The one cursor codec (service/api/cursor.py): what it writes it reads back, nothing else."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from werkzeug.exceptions import HTTPException

from service.api import cursor
from service.api.common import DATE_MAX, DATE_MIN, ID_MAX

CREATED = (cursor.moment, cursor.row_id)


def raw(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def refused(text: str, kinds=CREATED) -> dict:
    with pytest.raises(HTTPException) as caught:
        cursor.decode(text, kinds)
    assert caught.value.code == 422
    return caught.value.data


def test_round_trip_keeps_every_kind_of_value():
    when = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)
    assert cursor.decode(cursor.encode(when, 7), CREATED) == (when, 7)
    kinds = (cursor.text, cursor.number, cursor.row_id)
    assert cursor.decode(cursor.encode("-score", 0.25, ID_MAX), kinds) == ("-score", 0.25, ID_MAX)
    assert cursor.after_id(cursor.encode(42)) == 42


def test_a_date_in_another_zone_comes_back_in_utc():
    when = datetime(2026, 3, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    (back, _) = cursor.decode(cursor.encode(when, 1), CREATED)
    assert back == when and back.tzinfo == UTC


def test_the_cursor_is_url_safe_and_unpadded():
    text = cursor.encode(datetime(2026, 1, 1, tzinfo=UTC), 2**62)
    assert "=" not in text and "+" not in text and "/" not in text


@pytest.mark.parametrize(
    "text",
    [
        "garbage!",  # not base64
        raw("not json"),
        raw('{"a": 1}'),  # not a list
        raw('["2026-01-01T00:00:00+00:00"]'),  # too short
        raw('["2026-01-01T00:00:00+00:00", 1, 2]'),  # too long
        raw('[1, "2026-01-01T00:00:00+00:00"]'),  # the wrong way round
        raw('["2026-01-01T00:00:00", 1]'),  # no zone
        raw('["2026-01-01T00:00:00+00:00", 0]'),  # not a row's id
        raw('["2026-01-01T00:00:00+00:00", true]'),
        raw('["2026-01-01T00:00:00+00:00", 1.0]'),
        raw(f'["2026-01-01T00:00:00+00:00", {ID_MAX + 1}]'),
        raw('["2026-01-01T00:00:00+00:00", ' + "9" * 4301 + "]"),  # past int's digit limit
        raw("[" * 5000 + "]" * 5000),
        "\u00e9t\u00e9",  # not ASCII
    ],
)
def test_anything_malformed_is_a_422_naming_cursor(text):
    data = refused(text)
    assert data["errors"] == {"query": {"cursor": ["Not a valid cursor."]}}
    assert "cursor" in data["message"]


@pytest.mark.parametrize(
    "when",
    [
        "0001-01-01T00:00:00+14:00",  # before year 1 in UTC
        "0001-01-01T00:00:00Z",
        (DATE_MIN - timedelta(microseconds=1)).isoformat(),
        DATE_MAX.isoformat(),
        "9999-12-31T23:59:59-14:00",
        "9999-12-31T23:59:59.999999+00:00",
    ],
)
def test_dates_outside_the_apis_range_are_refused(when):
    refused(raw(json.dumps([when, 1])))


def test_the_range_s_own_edges_are_kept():
    for when in (DATE_MIN, DATE_MAX - timedelta(microseconds=1)):
        assert cursor.decode(cursor.encode(when, 1), CREATED) == (when, 1)


def test_a_tampered_cursor_is_refused():
    text = cursor.encode(datetime(2026, 1, 1, tzinfo=UTC), 5)
    position = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    position[1] = "5"  # an id turned into a string
    refused(raw(json.dumps(position)))
    refused(text[:-3])


def test_a_score_must_be_a_number():
    kinds = (cursor.text, cursor.number, cursor.row_id)
    for value in ('"0.5"', "true", "null"):
        refused(raw(f'["-score", {value}, 1]'), kinds)
