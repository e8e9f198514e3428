"""Fixtures shared by the unit tests."""
import pytest

from fake_registry import FakeRegistry


@pytest.fixture
def fake():
    """An in-process fake registry on 127.0.0.1, closed after the test."""
    reg = FakeRegistry()
    yield reg
    reg.close()
