"""The one error hierarchy. The CLI turns each into a one-line message and an exit code.

Every message should name the file or host concerned and say what to do.
"""

from __future__ import annotations

# Exit codes of SPEC section 3.
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2  # drift, overdue patches, failures, plan has changes
EXIT_CLOSED = 3
EXIT_INCOMPLETE = 4


class OrchestratorError(Exception):
    """Base of every error the orchestrator raises on purpose."""

    exit_code = EXIT_ERROR

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(OrchestratorError):
    """orchestrator.yml, environment or flags are wrong."""


class PolicyError(OrchestratorError):
    """One or more policy documents are invalid. `problems` holds every line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        first = self.problems[0] if self.problems else "invalid policy"
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        super().__init__(first + more)


class InventoryError(OrchestratorError):
    """The Ansible inventory cannot be read or does not match the policies."""


class StateError(OrchestratorError):
    """The state database (change log, leases, history) cannot be used."""


class ChainBroken(StateError):
    """`log verify` found a record whose hash chain does not hold."""


class TransportError(OrchestratorError):
    """A host could not be reached or a command on it failed at transport level."""

    def __init__(self, host: str, message: str) -> None:
        self.host = host
        super().__init__(f"{host}: {message}")


class HostKeyError(TransportError):
    """A host key is unknown (strict mode) or has changed."""


class LabError(OrchestratorError):
    """The local lab fleet cannot be built, started or stopped."""


class WindowClosed(OrchestratorError):
    """Work was asked for outside a maintenance window."""

    exit_code = EXIT_CLOSED
