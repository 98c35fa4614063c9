"""Parsing of ``--set key=value`` options."""

from __future__ import annotations

import click
import pytest

from etiket_sync_agent.cli._common import parse_set_options


def test_plain_dotted_and_json_values() -> None:
    parsed = parse_set_options(
        [
            "database_path=C:/data/x.db",
            "set_up=fridge=1",
            "static_attributes.sample=chip 7",
            "static_attributes.cooldown=3",
            'tags=["a", "b"]',
        ]
    )
    assert parsed == {
        "database_path": "C:/data/x.db",
        "set_up": "fridge=1",
        "static_attributes": {"sample": "chip 7", "cooldown": "3"},
        "tags": ["a", "b"],
    }


@pytest.mark.parametrize("bad", ["novalue", "=x", "x={broken"])
def test_bad_pairs_are_refused(bad: str) -> None:
    with pytest.raises(click.BadParameter):
        parse_set_options([bad])
