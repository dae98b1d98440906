"""pytest fixtures for the fake server. Import them into a conftest.py:

    from tests.fake_anthropic.fixtures import anthropic_env, fake_anthropic  # noqa: F401
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .server import FakeAnthropic

TEST_KEY = "test-key"


@pytest.fixture
def fake_anthropic() -> Iterator[FakeAnthropic]:
    """A started fake server expecting the key "test-key"; stopped after the test."""
    with FakeAnthropic(api_key=TEST_KEY) as fake:
        yield fake


@pytest.fixture
def anthropic_env(fake_anthropic: FakeAnthropic, monkeypatch: pytest.MonkeyPatch) -> FakeAnthropic:
    """Environment for code (or a CLI subprocess) that builds its own client from the environment."""
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("ANTHROPIC_PROFILE", raising=False)
    monkeypatch.setenv("ANTHROPIC_API_KEY", TEST_KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake_anthropic.base_url)
    return fake_anthropic
