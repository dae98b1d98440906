"""A fake Anthropic API server for tests: real HTTP on 127.0.0.1, driven by the real `anthropic` SDK.

See README.md in this folder. Never patch the SDK; point it at `FakeAnthropic.base_url`.
"""

from __future__ import annotations

from .server import DEFAULT_CONFIG, FAULT_KINDS, FakeAnthropic, Fault, default_responder, echo_responder

__all__ = ["DEFAULT_CONFIG", "FAULT_KINDS", "FakeAnthropic", "Fault", "default_responder", "echo_responder"]
