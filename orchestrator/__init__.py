"""orchestrator: infrastructure-as-code maintenance orchestrator."""

__version__ = "0.1.0"
