"""The one error family of ootgen: every user-facing failure explains itself in one line.

The CLI prints `str(error)` and exits 2 (bad input) or the error's own `exit_code`.
"""

from __future__ import annotations


class OotgenError(Exception):
    """A problem the user can fix: names the file, line, key path and what was expected."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        key: str | None = None,
        expected: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.key = key
        self.expected = expected

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = str(self.file)
            if self.line:
                where += f":{self.line}"
            where += ": "
        key = f"{self.key}: " if self.key else ""
        expected = f" (expected {self.expected})" if self.expected else ""
        return f"{where}{key}{self.message}{expected}".replace("\n", " ")


class ConfigError(OotgenError):
    """A configuration, type, template, context or schema file is wrong."""


class ApiKeyMissing(OotgenError):
    """No API key was given for a command that must call the API."""


class RunAborted(OotgenError):
    """The run stopped on purpose (authentication failure, budget, changed config)."""

    exit_code = 1


class ModelNotFound(OotgenError):
    """The API answered 404 for a model id: bad input (exit 2); the run names where the model was set."""

    def __init__(self, model: str, message: str) -> None:
        super().__init__(message, key="model")
        self.model = model
        self.args = (model, message)  # so copy.copy (the limiter hands each waiting call its own) can rebuild it
