"""The tier markers the root conftest.py assigns at collection."""

from __future__ import annotations

import pytest
from nats.aio.client import Client as NATS


def test_a_test_without_a_server_is_a_unit(request: pytest.FixtureRequest) -> None:
    assert request.node.get_closest_marker("unit")
    assert not request.node.get_closest_marker("integration")


async def test_a_test_using_nats_through_another_fixture_is_integration(
        request: pytest.FixtureRequest, nc: NATS) -> None:
    assert request.node.get_closest_marker("integration")
    assert not request.node.get_closest_marker("unit")


@pytest.mark.integration
def test_an_explicit_tier_is_kept(request: pytest.FixtureRequest) -> None:
    assert not request.node.get_closest_marker("unit")
