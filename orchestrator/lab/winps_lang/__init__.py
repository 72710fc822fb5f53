"""The PowerShell language subset of the lab's Windows emulator: parser and evaluator (stdlib).

Not PowerShell. It parses and runs what the orchestrator sends, with PowerShell's semantics for:
statements separated by `;` or new lines, `#` and `<# #>` comments, backtick line continuation;
`$var = ...` (also `[Console]::OutputEncoding = ...`), `if/elseif/else`, `foreach ($x in ...)`,
`try/catch/finally`, `exit N`, `throw`; pipelines of commands (`-Param value`, `-Param:value`,
switches, positional and comma-separated arguments, `& { script block }`); expressions:
'single' and "double" strings (`$var`, `$(...)`, backtick escapes), numbers, `$true/$false/$null`,
`$env:NAME`, `(...)`, `@(...)`, `$(...)`, `@{k = v}` (also `[ordered]`, `[pscustomobject]`),
`{ script block }`, casts `[string] [int] [bool] [array]`, `.Member`, `.Method(args)`,
`$obj.Property = value` (property bags, and COM objects' settable properties),
`[Type]::Static(args)`, `x[i]`, `,` arrays, `+ -`, `-not !`, `-and -or`, and the comparison
operators `-eq -ne -gt -ge -lt -le -like -notlike -match -notmatch -contains -notcontains -in
-notin` (case-insensitive; a list on the left filters). Objects: [DateTime] (Year .. Second,
Date, DayOfWeek, `ToString([format][, provider])` with .NET's format strings),
[Globalization.CultureInfo]::InvariantCulture / CurrentCulture (en-US), COM objects
(`com.ComObject`: properties, methods, HRESULT errors). Generic cmdlets: ConvertTo-Json
(-Depth, default 2), Select-Object, Where-Object, ForEach-Object, Out-String, Out-Null,
Write-Output/echo, Write-Host, Write-Error. Commands that touch the host (New-Object -ComObject
among them) are given by the caller (winps.py).

Errors: terminating errors (`-ErrorAction Stop`, `$ErrorActionPreference = 'Stop'`, throw) unwind
to the nearest catch (`$_.Exception.Message`); non-terminating ones go to stderr (or nowhere with
`-ErrorAction SilentlyContinue`) and make the exit code 1 when the last statement had one, as
`powershell -Command` does. Anything outside the subset fails like PowerShell would.

Modules: values (object kinds, errors, conversions), dates ([DateTime] formats, cultures), com
(COM objects and collections), lexer / expressions / parser (text to statement trees),
operators, members (properties, methods, [Type]::), formatting (default view, ConvertTo-Json),
cmdlets (the generic ones), evaluator (Interp). Imported as
`orchestrator.lab.winps_lang` or, by the lab's WinRM server, as the top-level `winps_lang`; the
modules import each other relatively so both work.
"""

from .evaluator import Interp
from .formatting import format_default, to_json
from .members import member
from .parser import Parser
from .values import (
    Bound,
    Command,
    Hashtable,
    PSDate,
    PSError,
    PSObject,
    ScriptBlock,
    enumerate_,
    to_string,
    truthy,
)

__all__ = [
    "Bound", "Command", "Hashtable", "Interp", "PSDate", "PSError", "PSObject", "Parser",
    "ScriptBlock", "enumerate_", "format_default", "member", "to_json", "to_string", "truthy",
]
