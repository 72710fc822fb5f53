"""One round trip per host: many facts' commands in one script, output split back per fact.

POSIX: each fact runs in a subshell `( ... ) </dev/null`, followed on stdout and stderr by
`\\n@@ORCH:<nonce>:<index>:<exit status>\\n`. The nonce is random per batch, so a host's
output cannot forge a delimiter by accident. A section whose delimiter never arrives (the
batch was cut short) is an error for that fact alone; so is output a parser cannot read.
PowerShell: each fact runs as a script block in try/catch, its output collected with Out-String;
that text (or the error message, exit status 1) is followed by the same delimiter on stdout.
"""

from __future__ import annotations

import re
import secrets
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field

from orchestrator.facts.base import (
    FACTS,
    FactArgError,
    FactParseError,
    FactRequest,
    FactResult,
    Output,
)
from orchestrator.quoting import powershell_quote


@dataclass
class FactBatch:
    shell: str  # sh | powershell
    section_timeout: float | None = None  # sh only: wrap each fact in timeout(1) if present
    nonce: str = field(default_factory=lambda: secrets.token_hex(8))
    requests: list[FactRequest] = field(default_factory=list)
    rejected: dict[FactRequest, FactResult] = field(default_factory=dict)
    _codes: list[str] = field(default_factory=list)

    def add(self, request: FactRequest) -> None:
        if request in self.requests or request in self.rejected:
            return
        spec = FACTS.get(request.fact)
        if spec is None:
            self.rejected[request] = FactResult(error=f"unknown fact {request.fact!r}")
            return
        if spec.shell != self.shell:
            self.rejected[request] = FactResult(
                error=f"{request.fact} needs {spec.shell}; this host's transport runs {self.shell}"
            )
            return
        try:
            if spec.check:
                spec.check(request.args)
            code = spec.command(request.args)
        except (FactArgError, ValueError) as exc:
            self.rejected[request] = FactResult(error=f"rejected: {exc}")
            return
        self.requests.append(request)
        self._codes.append(code)

    def extend(self, requests: Iterable[FactRequest]) -> None:
        for r in requests:
            self.add(r)

    # -- script --------------------------------------------------------------------------
    def marker(self, index: int, rc: str) -> str:
        return f"@@ORCH:{self.nonce}:{index}:{rc}"

    def script(self) -> str:
        return self._sh_script() if self.shell == "sh" else self._ps_script()

    def _sh_script(self) -> str:
        lines = ["exec </dev/null", "LC_ALL=C; export LC_ALL"]
        if self.section_timeout:
            t = f"{self.section_timeout:g}"
            lines.append(
                f"if command -v timeout >/dev/null 2>&1; then _T='timeout -k 2 {t}'; else _T=; fi"
            )
        for i, code in enumerate(self._codes):
            if self.section_timeout:
                body = f"$_T sh -c {shlex.quote(code)}"
            else:
                body = f"(\n{code}\n)"
            mark = f"'\\n@@ORCH:{self.nonce}:{i}:%s\\n'"
            lines.append(f'{body}; _rc=$?; printf {mark} "$_rc"; printf {mark} "$_rc" >&2')
        return "\n".join(lines) + "\n"

    def _ps_script(self) -> str:
        lines = [
            "$ProgressPreference = 'SilentlyContinue'",
            "$ErrorActionPreference = 'Stop'",
            "[Console]::OutputEncoding = [Text.Encoding]::UTF8",
        ]
        for i, code in enumerate(self._codes):
            mark = powershell_quote(f"@@ORCH:{self.nonce}:{i}:")
            lines += [
                f"try {{ $o = & {{\n{code}\n}} | Out-String -Width 65536; $rc = 0 }}",
                "catch { $o = $_.Exception.Message; $rc = 1 }",
                f'[Console]::Out.Write($o + "`n" + {mark} + $rc + "`n")',
            ]
        return "\n".join(lines) + "\n"

    # -- output --------------------------------------------------------------------------
    def _split(self, data: bytes) -> dict[int, tuple[bytes, int]]:
        pat = re.compile(rb"\n@@ORCH:" + self.nonce.encode() + rb":(\d+):(\d+)\r?\n")
        out: dict[int, tuple[bytes, int]] = {}
        pos = 0
        for m in pat.finditer(data):
            idx = int(m.group(1))
            if idx < len(self.requests) and idx not in out:
                out[idx] = (data[pos : m.start()], int(m.group(2)))
            pos = m.end()
        return out

    def parse(self, stdout: bytes, stderr: bytes) -> dict[FactRequest, FactResult]:
        """Per-request results. Never raises: every problem becomes that fact's error."""
        results: dict[FactRequest, FactResult] = dict(self.rejected)
        # a leading newline lets a section at offset 0 be found by the same pattern
        outs = self._split(b"\n" + stdout) if stdout.startswith(b"@@ORCH:") else self._split(stdout)
        errs = self._split(stderr) if self.shell == "sh" else {}
        for i, req in enumerate(self.requests):
            if i not in outs:
                results[req] = FactResult(error="no output for this fact (the batch stopped early)")
                continue
            raw, rc = outs[i]
            raw_err = errs.get(i, (b"", rc))[0]
            text, lossy = _decode(raw)
            err_text, _ = _decode(raw_err)
            if self.shell == "powershell" and rc != 0:
                err_text = text
            if rc == 124 and self.section_timeout:
                results[req] = FactResult(error=f"timed out after {self.section_timeout:g}s")
                continue
            try:
                value = FACTS[req.fact].parse(Output(text, err_text, rc), req.args)
            except FactParseError as exc:
                results[req] = FactResult(error=_one_line(str(exc)), lossy=lossy)
                continue
            except Exception as exc:  # noqa: BLE001 - a parser bug must not end the audit
                results[req] = FactResult(
                    error=_one_line(f"cannot parse output ({type(exc).__name__}: {exc})"),
                    lossy=lossy,
                )
                continue
            results[req] = FactResult(value=value, lossy=lossy)
        return results


def _decode(raw: bytes) -> tuple[str, bool]:
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="replace"), True


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]


__all__ = ["FactBatch", "FactParseError"]
