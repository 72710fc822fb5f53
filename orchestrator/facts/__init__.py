"""Facts about hosts: pure parsers plus commands, gathered in one round trip per host.

from orchestrator.facts import FactRequest, gather
results = gather(transport, [FactRequest("packages"), FactRequest("file.stat", ("/etc/motd",))],
                 timeout=30)
results[FactRequest("packages")].value.installed["openssh-server"]
"""

from __future__ import annotations

from orchestrator.facts import fwupd, posix, updates, windows  # noqa: F401 - registers the facts
from orchestrator.facts.base import (
    FACTS,
    Fact,
    FactArgError,
    FactParseError,
    FactRequest,
    FactResult,
    Output,
    to_jsonable,
)
from orchestrator.facts.batch import FactBatch
from orchestrator.facts.gather import gather

__all__ = [
    "FACTS",
    "Fact",
    "FactArgError",
    "FactBatch",
    "FactParseError",
    "FactRequest",
    "FactResult",
    "Output",
    "gather",
    "to_jsonable",
]
