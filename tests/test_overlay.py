"""Overlay: a row with a few values laid over it, for a response schema to dump."""

from __future__ import annotations

from types import SimpleNamespace

import marshmallow as ma

from service.overlay import Overlay


class Out(ma.Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()
    status = ma.fields.String()
    secret = ma.fields.String()


def test_given_values_win_and_the_rest_come_from_the_row():
    row = SimpleNamespace(id=1, name="ana", status="active", secret="old")
    assert Out().dump(Overlay(row, status="banned", secret="new")) == {
        "id": 1,
        "name": "ana",
        "status": "banned",
        "secret": "new",
    }
    assert row.status == "active"  # the row itself is untouched


def test_a_field_the_schema_gains_is_answered_from_the_row():
    row = SimpleNamespace(id=1, name="ana", status="active", secret="s")
    assert set(Out().dump(Overlay(row))) == set(Out().fields)


def test_missing_leaves_a_field_out():
    row = SimpleNamespace(id=1, name="ana", status="active", secret="s")
    assert Out().dump(Overlay(row, secret=ma.missing)) == {
        "id": 1,
        "name": "ana",
        "status": "active",
    }
