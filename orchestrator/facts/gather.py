"""gather(): one host's facts in one round trip over its transport."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from orchestrator.facts.base import FactRequest, FactResult
from orchestrator.facts.batch import FactBatch

DEFAULT_TIMEOUT = 60.0


class RawOutput(Protocol):
    stdout: bytes
    stderr: bytes


class Runner(Protocol):
    """What gather needs of a transport (facts never import transports): its shell dialect
    and `run(command, *args, timeout=)` returning raw stdout and stderr."""

    shell: str

    def run(self, command: str, *args: str, timeout: float = ...) -> RawOutput: ...


def gather(
    transport: Runner,
    requests: Iterable[FactRequest],
    timeout: float = DEFAULT_TIMEOUT,
    *,
    section_timeout: float | None = None,
) -> dict[FactRequest, FactResult]:
    """Run every request's command in one script on the host and parse each section.

    Returns a result per request (duplicates collapse). Bad arguments, garbage output, a
    missing section or undecodable bytes become per-fact errors (or the `lossy` flag).
    Transport failures (unreachable host, host key refused, the whole batch timing out)
    raise TransportError: the host, not a fact, failed.
    """
    batch = FactBatch(transport.shell, section_timeout=section_timeout)
    batch.extend(requests)
    if not batch.requests:
        return dict(batch.rejected)
    script = batch.script()
    if transport.shell == "sh":
        res = transport.run("sh -c", script, timeout=timeout)
    else:
        res = transport.run(script, timeout=timeout)
    return batch.parse(res.stdout, res.stderr)
