"""The PowerShell language subset of the lab's Windows emulator: parser and evaluator (stdlib).

Not PowerShell. It parses and runs what the orchestrator sends, with PowerShell's semantics for:
statements separated by `;` or new lines, `#` and `<# #>` comments, backtick line continuation;
`$var = ...` (also `[Console]::OutputEncoding = ...`), `if/elseif/else`, `foreach ($x in ...)`,
`try/catch/finally`, `exit N`, `throw`; pipelines of commands (`-Param value`, `-Param:value`,
switches, positional and comma-separated arguments, `& { script block }`); expressions:
'single' and "double" strings (`$var`, `$(...)`, backtick escapes), numbers, `$true/$false/$null`,
`$env:NAME`, `(...)`, `@(...)`, `$(...)`, `@{k = v}` (also `[ordered]`, `[pscustomobject]`),
`{ script block }`, casts `[string] [int] [bool] [array]`, `.Member`, `.Method(args)`,
`[Type]::Static(args)`, `x[i]`, `,` arrays, `+ -`, `-not !`, `-and -or`, and the comparison
operators `-eq -ne -gt -ge -lt -le -like -notlike -match -notmatch -contains -notcontains -in
-notin` (case-insensitive; a list on the left filters). Generic cmdlets: ConvertTo-Json,
Select-Object, Where-Object, ForEach-Object, Out-String, Out-Null, Write-Output/echo,
Write-Host, Write-Error. Commands that touch the host are given by the caller (winps.py).

Errors: terminating errors (`-ErrorAction Stop`, `$ErrorActionPreference = 'Stop'`, throw) unwind
to the nearest catch (`$_.Exception.Message`); non-terminating ones go to stderr (or nowhere with
`-ErrorAction SilentlyContinue`) and make the exit code 1 when the last statement had one, as
`powershell -Command` does. Anything outside the subset fails like PowerShell would.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

SWITCHES = {"compress", "force", "nonewline", "passthru", "recurse", "enumsasstrings",
            "asstring", "whatif", "confirm", "expandproperty_", "unique", "list"}
END = ("", "|", ";", "\n", ")", "}")


class PSError(Exception):
    """A terminating error. `command` prefixes the stderr text like PowerShell's error view."""

    def __init__(self, message: str, command: str = "") -> None:
        super().__init__(message)
        self.message, self.command = message, command

    def render(self) -> str:
        return f"{self.command} : {self.message}" if self.command else self.message


class Return(Exception):  # noqa: N818 - control flow, not an error
    def __init__(self, values: list) -> None:
        self.values = values


class ExitScript(Exception):  # noqa: N818
    def __init__(self, code: int) -> None:
        self.code = code


class PSObject(dict):
    """A property bag: [pscustomobject], Select-Object output, cmdlet results."""


class Hashtable(dict):
    pass


@dataclass
class PSDate:
    value: datetime

    def __str__(self) -> str:
        v = self.value
        return f"{v.month}/{v.day}/{v.year} {v.strftime('%I:%M:%S %p').lstrip('0')}"

    def json(self) -> str:  # PowerShell 5.1's ConvertTo-Json form
        return f"/Date({int(self.value.replace(tzinfo=UTC).timestamp() * 1000)})/"


@dataclass
class ScriptBlock:
    body: list


@dataclass
class ErrorRecord:
    error: PSError

    def ps_member(self, name: str) -> Any:
        if name == "exception":
            return PSObject(Message=self.error.message)
        return None

    def __str__(self) -> str:
        return self.error.message


@dataclass
class Bound:
    """A command's arguments: positional values and named ones (lower-case names)."""

    pos: list = field(default_factory=list)
    named: dict = field(default_factory=dict)

    def get(self, name: str, index: int | None = None, default: Any = None) -> Any:
        if name in self.named:
            return self.named[name]
        if index is not None and len(self.pos) > index:
            return self.pos[index]
        return default


Command = Callable[["Interp", Bound, list, str], list]


# ------------------------------------------------------------------------------- parser
class Parser:
    def __init__(self, text: str) -> None:
        self.s, self.i, self.comma_ok = text, 0, True

    def fail(self, msg: str) -> PSError:
        line = self.s.count("\n", 0, self.i) + 1
        return PSError(f"ParserError: line {line}: {msg}")

    def peek(self, n: int = 0) -> str:
        return self.s[self.i + n] if self.i + n < len(self.s) else ""

    def ws(self, newlines: bool = False) -> None:
        s = self.s
        while self.i < len(s):
            c = s[self.i]
            if c in " \t\r\ufeff" or (newlines and c == "\n"):
                self.i += 1
            elif c == "`" and self.peek(1) in ("\n", "\r"):
                self.i += 2
            elif s.startswith("<#", self.i):
                end = s.find("#>", self.i)
                self.i = len(s) if end < 0 else end + 2
            elif c == "#":
                end = s.find("\n", self.i)
                self.i = len(s) if end < 0 else end
            else:
                break

    def expect(self, ch: str) -> None:
        self.ws(newlines=True)
        if self.peek() != ch:
            raise self.fail(f"missing {ch!r}")
        self.i += 1

    def keyword(self, *words: str) -> str | None:
        m = re.match(r"([A-Za-z]+)(?![\w\-.])", self.s[self.i:])
        if m and m.group(1).lower() in words:
            self.i += m.end()
            return m.group(1).lower()
        return None

    # statements
    def script(self) -> list:
        body = self.statements("")
        if self.i < len(self.s):
            raise self.fail(f"unexpected {self.peek()!r}")
        return body

    def statements(self, end: str) -> list:
        out = []
        saved, self.comma_ok = self.comma_ok, True
        while True:
            self.ws(newlines=True)
            if self.peek() == ";":
                self.i += 1
                continue
            if self.peek() == "" or (end and self.peek() == end):
                break
            out.append(self.statement())
            self.ws()
            if self.peek() in (";", "\n"):
                self.i += 1
            elif not (self.peek() == "" or (end and self.peek() == end)):
                raise self.fail(f"unexpected {self.peek()!r}")
        self.comma_ok = saved
        return out

    def block(self) -> list:
        self.expect("{")
        body = self.statements("}")
        self.expect("}")
        return body

    def statement(self) -> tuple:
        start = self.i
        kw = self.keyword("if", "try", "foreach", "exit", "return", "throw")
        if kw == "if":
            branches, other = [], None
            while True:
                self.expect("(")
                self.ws(True)
                cond = self.statement()
                self.expect(")")
                branches.append((cond, self.block()))
                save = self.i
                self.ws(True)
                if self.keyword("elseif"):
                    continue
                if self.keyword("else"):
                    other = self.block()
                else:
                    self.i = save
                break
            return ("if", branches, other)
        if kw == "try":
            body, catch, final = self.block(), None, None
            save = self.i
            self.ws(True)
            if self.keyword("catch"):
                self.ws()
                while self.peek() == "[":  # catch [Type] { }: any error is caught
                    self.primary()
                    self.ws()
                    if self.peek() == ",":
                        self.i += 1
                        self.ws()
                catch = self.block()
                save = self.i
                self.ws(True)
            if self.keyword("finally"):
                final = self.block()
            else:
                self.i = save
            if catch is None and final is None:
                raise self.fail("try needs a catch or finally block")
            return ("try", body, catch, final)
        if kw == "foreach":
            self.expect("(")
            self.ws()
            m = re.match(r"\$([A-Za-z_]\w*)\s+in\s", self.s[self.i:], re.I)
            if not m:
                raise self.fail("foreach needs ($name in ...)")
            self.i += m.end()
            self.ws(True)
            items = self.statement()
            self.expect(")")
            return ("foreach", m.group(1).lower(), items, self.block())
        if kw in ("exit", "return", "throw"):
            self.ws()
            value = None if self.peek() in END else self.expression()
            return (kw, value)
        if kw is not None:
            self.i = start
        if self.peek() in ("$", "["):
            try:
                target = self.postfix()
            except PSError:
                target = None
            self.ws()
            if (target and target[0] in ("var", "static", "member") and self.peek() == "="
                    and self.peek(1) != "="):
                self.i += 1
                self.ws(True)
                return ("assign", target, self.statement())
            self.i = start
        return self.pipeline()

    def pipeline(self) -> tuple:
        elems = [self.element()]
        while True:
            self.ws()
            if self.peek() == "|" and self.peek(1) != "|":
                self.i += 1
                self.ws(True)
                elems.append(self.element())
            else:
                return ("pipeline", elems)

    def element(self) -> tuple:
        c = self.peek()
        if c == "&":
            self.i += 1
            self.ws()
            target = self.primary() if self.peek() == "{" else self.arg_value()
            return ("cmd", target, self.cmd_args())
        if c.isalpha() or c == "_":
            m = re.match(r"[^\s|;(){}'\",]+", self.s[self.i:])
            assert m
            self.i += m.end()
            return ("cmd", m.group(0), self.cmd_args())
        return ("expr", self.expression())

    def cmd_args(self) -> list:
        args = []
        while True:
            self.ws()
            c = self.peek()
            if c in END:
                return args
            m = re.match(r"-([A-Za-z_]\w*)(:?)", self.s[self.i:])
            if m:
                self.i += m.end()
                value = None
                if m.group(2):
                    self.ws()
                    value = self.arg_list()
                args.append(("param", m.group(1).lower(), value))
            else:
                args.append(("arg", self.arg_list()))

    def arg_list(self) -> tuple:
        items = [self.arg_value()]
        while True:
            save = self.i
            self.ws()
            if self.peek() != ",":
                self.i = save
                break
            self.i += 1
            self.ws(True)
            items.append(self.arg_value())
        return items[0] if len(items) == 1 else ("array", items)

    def arg_value(self) -> tuple:
        if self.peek() and self.peek() in "'\"$(@[{":
            return self.postfix()
        m = re.match(r"[^\s|;(){},'\"]+", self.s[self.i:])
        if not m:
            raise self.fail(f"unexpected {self.peek()!r}")
        self.i += m.end()
        text = m.group(0)
        if re.fullmatch(r"-?\d+", text):
            return ("num", int(text))
        return ("str", text)

    # expressions
    def expression(self) -> tuple:
        left = self.comparison()
        while True:
            save = self.i
            self.ws()
            m = re.match(r"-(and|or|xor)(?![\w])", self.s[self.i:], re.I)
            if not m:
                self.i = save
                return left
            self.i += m.end()
            self.ws(True)
            left = ("binop", m.group(1).lower(), left, self.comparison())

    CMP = (r"-[ic]?(eq|ne|gt|ge|lt|le|like|notlike|match|notmatch|contains|notcontains|in|"
           r"notin)(?![\w])")

    def comparison(self) -> tuple:
        left = self.additive()
        while True:
            save = self.i
            self.ws()
            m = re.match(self.CMP, self.s[self.i:], re.I)
            if not m:
                self.i = save
                return left
            self.i += m.end()
            self.ws(True)
            left = ("binop", m.group(1).lower(), left, self.additive())

    def additive(self) -> tuple:
        left = self.arraylit()
        while True:
            save = self.i
            self.ws()
            c = self.peek()
            if c == "+" or (c == "-" and not self.peek(1).isalpha()):
                self.i += 1
                self.ws(True)
                left = ("binop", c, left, self.arraylit())
            else:
                self.i = save
                return left

    def arraylit(self) -> tuple:
        items = [self.unary()]
        while self.comma_ok:
            save = self.i
            self.ws()
            if self.peek() != ",":
                self.i = save
                break
            self.i += 1
            self.ws(True)
            items.append(self.unary())
        return items[0] if len(items) == 1 else ("array", items)

    def unary(self) -> tuple:
        self.ws()
        m = re.match(r"-not(?![\w])", self.s[self.i:], re.I)
        if m or self.peek() == "!":
            self.i += m.end() if m else 1
            self.ws()
            return ("not", self.unary())
        if self.peek() == "-" and self.peek(1).isdigit():
            self.i += 1
            return ("neg", self.unary())
        if self.peek() == "[":
            save = self.i
            t = self.primary()
            if not self.s.startswith("::", self.i):
                self.ws()
                if self.peek() and self.peek() not in END and self.peek() not in ",=":
                    return ("cast", t[1], self.unary())
                return t
            self.i = save
        return self.postfix()

    def postfix(self) -> tuple:
        node = self.primary()
        while True:
            if self.s.startswith("::", self.i) or (self.peek() == "." and (
                    self.peek(1).isalpha() or self.peek(1) == "_")):
                static = self.peek() == ":"
                self.i += 2 if static else 1
                m = re.match(r"[A-Za-z_]\w*", self.s[self.i:])
                if not m:
                    raise self.fail("missing member name")
                self.i += m.end()
                name = m.group(0).lower()
                if self.peek() == "(":
                    node = ("invoke", node, name, self.call_args())
                else:
                    node = ("static" if static else "member", node, name)
            elif self.peek() == "[" and node[0] != "type":
                self.i += 1
                self.ws(True)
                idx = self.expression()
                self.expect("]")
                node = ("index", node, idx)
            else:
                return node

    def call_args(self) -> list:
        self.i += 1
        args = []
        saved, self.comma_ok = self.comma_ok, False
        self.ws(True)
        if self.peek() == ")":
            self.i += 1
        else:
            while True:
                self.ws(True)
                args.append(self.expression())
                self.ws(True)
                if self.peek() == ",":
                    self.i += 1
                    continue
                self.expect(")")
                break
        self.comma_ok = saved
        return args

    def primary(self) -> tuple:  # noqa: C901 - one branch per kind of primary
        s, c = self.s, self.peek()
        if c == "'":
            out, self.i = [], self.i + 1
            while True:
                j = s.find("'", self.i)
                if j < 0:
                    raise self.fail("missing closing '")
                out.append(s[self.i:j])
                self.i = j + 1
                if self.peek() == "'":
                    out.append("'")
                    self.i += 1
                else:
                    return ("str", "".join(out))
        if c == '"':
            return self.dquoted()
        if s.startswith("$(", self.i):
            self.i += 2
            body = self.statements(")")
            self.expect(")")
            return ("sub", body)
        if c == "$":
            m = re.match(r"\$(?:(env):)?([A-Za-z_]\w*|\?)", s[self.i:], re.I)
            if not m:
                raise self.fail("bad variable name")
            self.i += m.end()
            name = m.group(2).lower()
            return ("var", f"env:{name}" if m.group(1) else name)
        if c == "(":
            self.i += 1
            saved, self.comma_ok = self.comma_ok, True
            self.ws(True)
            inner = self.statement()
            self.expect(")")
            self.comma_ok = saved
            return ("paren", inner)
        if s.startswith("@(", self.i):
            self.i += 2
            body = self.statements(")")
            self.expect(")")
            return ("arraysub", body)
        if s.startswith("@{", self.i):
            return self.hashtable()
        if c == "{":
            return ("block", self.block())
        if c == "[":
            m = re.match(r"\[\s*([A-Za-z_][\w.]*(?:\[\])?)\s*\]", s[self.i:])
            if not m:
                raise self.fail("bad type name")
            self.i += m.end()
            return ("type", m.group(1).lower())
        m = re.match(r"\d+(\.\d+)?", s[self.i:])
        if m:
            self.i += m.end()
            return ("num", float(m.group(0)) if m.group(1) else int(m.group(0)))
        raise self.fail(f"unexpected {c!r}" if c else "unexpected end of script")

    def dquoted(self) -> tuple:
        parts, buf = [], []
        self.i += 1
        esc = {"n": "\n", "r": "\r", "t": "\t", "0": "\0", "a": "\a", "e": "\x1b"}
        while True:
            c = self.peek()
            if c == "":
                raise self.fail('missing closing "')
            if c == "`":
                buf.append(esc.get(self.peek(1), self.peek(1)))
                self.i += 2
            elif c == '"':
                if self.peek(1) == '"':
                    buf.append('"')
                    self.i += 2
                    continue
                self.i += 1
                break
            elif c == "$" and (self.peek(1) == "(" or re.match(r"[A-Za-z_]", self.peek(1))):
                if buf:
                    parts.append("".join(buf))
                    buf = []
                parts.append(self.primary())
            else:
                buf.append(c)
                self.i += 1
        if buf:
            parts.append("".join(buf))
        return ("xstr", parts)

    def hashtable(self) -> tuple:
        self.i += 2
        entries = []
        saved, self.comma_ok = self.comma_ok, True
        while True:
            self.ws(True)
            if self.peek() == ";":
                self.i += 1
                continue
            if self.peek() == "}":
                self.i += 1
                break
            if self.peek() in ("'", '"'):
                key = self.primary()
            else:
                m = re.match(r"[A-Za-z_][\w-]*", self.s[self.i:])
                if not m:
                    raise self.fail("missing hashtable key")
                self.i += m.end()
                key = ("str", m.group(0))
            self.expect("=")
            self.ws(True)
            entries.append((key, self.statement()))
            self.ws()
        self.comma_ok = saved
        return ("hash", entries)


# ------------------------------------------------------------------------------ evaluator
def truthy(v: Any) -> bool:
    if isinstance(v, list):
        return len(v) > 1 or (len(v) == 1 and truthy(v[0]))
    return bool(v) if isinstance(v, (str, int, float, bool, type(None))) else True


def to_string(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "True" if v else "False"
    if isinstance(v, list):
        return " ".join(to_string(x) for x in v)
    if isinstance(v, PSObject):
        return "@{" + "; ".join(f"{k}={to_string(x)}" for k, x in v.items()) + "}"
    if isinstance(v, Hashtable):
        return "System.Collections.Hashtable"
    return str(v)


def to_json_value(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): to_json_value(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [to_json_value(x) for x in v]
    if isinstance(v, PSDate):
        return v.json()
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return to_string(v)


def member(obj: Any, name: str) -> Any:
    """`obj.Name`: case-insensitive; a list yields its items' members (member enumeration)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if str(k).lower() == name:
                return v
        if isinstance(obj, Hashtable) and name == "count":
            return len(obj)
        return None
    if isinstance(obj, list):
        if name in ("count", "length"):
            return len(obj)
        vals = [member(x, name) for x in obj]
        return [v for v in vals if v is not None]
    if isinstance(obj, str) and name == "length":
        return len(obj)
    if hasattr(obj, "ps_member"):
        return obj.ps_member(name)
    return None


class Interp:
    def __init__(self, commands: dict[str, Command], env: dict[str, str]) -> None:
        self.commands = {**GENERIC, **commands}
        self.env = {k.lower(): v for k, v in env.items()}
        self.scopes: list[dict[str, Any]] = [{"erroractionpreference": "Continue"}]
        self.out: list[str] = []
        self.err: list[str] = []
        self.failed = False  # $? of the statement running now is False

    # entry
    def run(self, script: str) -> tuple[str, str, int]:
        try:
            body = Parser(script).script()
        except PSError as exc:
            return "", exc.render() + "\r\n", 1
        code = 0
        try:
            for st in body:
                self.failed = False
                for obj in self.exec_stmt(st):
                    self.out.append(format_default(obj))
            code = 1 if self.failed else 0
        except ExitScript as exc:
            code = exc.code
        except Return:
            code = 0
        except PSError as exc:
            self.err.append(exc.render() + "\r\n")
            code = 1
        return "".join(self.out), "".join(self.err), code

    # variables
    def get_var(self, name: str) -> Any:
        if name in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[name]
        if name.startswith("env:"):
            return self.env.get(name[4:])
        if name == "?":
            return not self.failed
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        return None

    def set_var(self, name: str, value: Any) -> None:
        if name in ("true", "false", "null", "?") or name.startswith("env:"):
            raise PSError(f"Cannot overwrite variable {name} because it is read-only or constant.")
        self.scopes[-1][name] = value

    def error(self, message: str, command: str, action: str | None) -> None:
        """A non-terminating error, handled per -ErrorAction / $ErrorActionPreference."""
        pref = str(action or self.get_var("erroractionpreference") or "Continue").lower()
        if pref == "stop":
            raise PSError(message, command)
        if pref not in ("silentlycontinue", "ignore"):
            self.failed = True  # shown errors (not silenced ones) make the exit code 1
            self.err.append(f"{command} : {message}\r\n")

    # statements
    def exec_block(self, body: list) -> list:
        out: list = []
        for st in body:
            out += self.exec_stmt(st)
        return out

    def value_of(self, st: tuple) -> Any:
        """A statement as a value: a lone expression as is, pipeline output collapsed."""
        if st[0] == "pipeline" and len(st[1]) == 1 and st[1][0][0] == "expr":
            return self.eval(st[1][0][1])
        out = self.exec_stmt(st)
        return None if not out else out[0] if len(out) == 1 else out

    def exec_stmt(self, st: tuple) -> list:  # noqa: C901 - one branch per statement kind
        kind = st[0]
        if kind == "pipeline":
            return self.pipeline(st[1])
        if kind == "assign":
            self.assign(st[1], self.value_of(st[2]))
            return []
        if kind == "if":
            for cond, body in st[1]:
                if truthy(self.value_of(cond)):
                    return self.exec_block(body)
            return self.exec_block(st[2]) if st[2] is not None else []
        if kind == "try":
            try:
                return self.exec_block(st[1])
            except PSError as exc:
                if st[2] is None:
                    raise
                self.scopes[-1]["_"] = ErrorRecord(exc)
                return self.exec_block(st[2])
            finally:
                if st[3] is not None:
                    self.exec_block(st[3])
        if kind == "foreach":
            out = []
            for item in enumerate_(self.value_of(st[2])):
                self.set_var(st[1], item)
                out += self.exec_block(st[3])
            return out
        if kind == "exit":
            raise ExitScript(int(self.eval(st[1]) or 0) if st[1] else 0)
        if kind == "return":
            raise Return([] if st[1] is None else enumerate_(self.eval(st[1])))
        if kind == "throw":
            raise PSError(to_string(self.eval(st[1])) if st[1] else "ScriptHalted")
        raise PSError(f"unsupported statement {kind}")

    def assign(self, target: tuple, value: Any) -> None:
        if target[0] == "var":
            self.set_var(target[1], value)
        elif target[0] == "static" and target[1] == ("type", "console"):
            return  # [Console]::OutputEncoding = ...: our stdout is UTF-8 already
        elif target[0] == "member" and isinstance(obj := self.eval(target[1]), dict):
            obj[target[2]] = value
        else:
            raise PSError("The assignment expression is not valid.")

    def pipeline(self, elems: list) -> list:
        data: list = []
        for n, el in enumerate(elems):
            if el[0] == "expr":
                if n:
                    raise PSError("Expressions are only allowed as the first element of a "
                                  "pipeline.")
                data = enumerate_(self.eval(el[1]))
            else:
                data = self.invoke(el[1], el[2], data)
        return data

    def invoke(self, target: Any, args: list, data: list) -> list:
        if not isinstance(target, str):
            block = self.eval(target)
            if not isinstance(block, ScriptBlock):
                target = to_string(block)
            else:
                return self.call_block(block, None)
        fn = self.commands.get(target.lower())
        if fn is None:
            raise PSError(f"The term '{target}' is not recognized as the name of a cmdlet, "
                          "function, script file, or operable program. Check the spelling of the "
                          "name, or if a path was included, verify that the path is correct and "
                          "try again.", target)
        bound = Bound()
        i = 0
        while i < len(args):
            kind, *rest = args[i]
            if kind == "param":
                name, value = rest
                if value is None and name not in SWITCHES and i + 1 < len(args) \
                        and args[i + 1][0] == "arg":
                    value = args[i + 1][1]
                    i += 1
                bound.named[name] = True if value is None else self.eval(value)
            else:
                bound.pos.append(self.eval(rest[0]))
            i += 1
        action = bound.named.get("erroraction")
        return fn(self, bound, data, None if action is None else to_string(action))

    def call_block(self, block: ScriptBlock, dollar: Any, *, has_dollar: bool = False) -> list:
        self.scopes.append({"_": dollar} if has_dollar else {})
        try:
            return self.exec_block(block.body)
        except Return as ret:
            return ret.values
        finally:
            self.scopes.pop()

    # expressions
    def eval(self, node: tuple) -> Any:  # noqa: C901 - one branch per node kind
        kind = node[0]
        if kind in ("str", "num"):
            return node[1]
        if kind == "xstr":
            return "".join(p if isinstance(p, str) else to_string(self.eval(p)) for p in node[1])
        if kind == "var":
            return self.get_var(node[1])
        if kind == "array":
            return [self.eval(x) for x in node[1]]
        if kind == "paren":
            return self.value_of(node[1])
        if kind == "arraysub":
            return self.exec_block(node[1])
        if kind == "sub":
            out = self.exec_block(node[1])
            return None if not out else out[0] if len(out) == 1 else out
        if kind == "hash":
            return Hashtable((to_string(self.eval(k)), self.value_of(v)) for k, v in node[1])
        if kind == "block":
            return ScriptBlock(node[1])
        if kind == "type":
            return PSType(node[1])
        if kind == "cast":
            return cast(node[1], self.eval(node[2]))
        if kind == "member":
            return member(self.eval(node[1]), node[2])
        if kind == "static":
            if node[1][1] in ("console", "system.console") and node[2] == "out":
                return ConsoleOut(self)
            return static_member(node[1], node[2])
        if kind == "invoke":
            args = [self.eval(a) for a in node[3]]
            if node[1][0] == "type":
                return static_call(self, node[1][1], node[2], args)
            return call_method(self.eval(node[1]), node[2], args)
        if kind == "index":
            obj, idx = self.eval(node[1]), self.eval(node[2])
            if isinstance(obj, dict):
                return member(obj, str(idx).lower())
            try:
                return (obj if isinstance(obj, (list, str)) else [obj])[int(idx)]
            except (IndexError, TypeError, ValueError):
                return None
        if kind == "not":
            return not truthy(self.eval(node[1]))
        if kind == "neg":
            return -self.eval(node[1])
        if kind == "binop":
            op = node[1]
            if op in ("and", "or"):
                left = truthy(self.eval(node[2]))
                if op == "and":
                    return left and truthy(self.eval(node[3]))
                return left or truthy(self.eval(node[3]))
            return binop(op, self.eval(node[2]), self.eval(node[3]))
        raise PSError(f"unsupported expression {kind}")


@dataclass
class PSType:
    name: str


def enumerate_(v: Any) -> list:
    if v is None:
        return []
    return list(v) if isinstance(v, list) else [v]


def cast(type_name: str, v: Any) -> Any:
    t = type_name.removeprefix("system.")
    if t == "string":
        return to_string(v)
    if t in ("int", "int32", "int64", "long"):
        try:
            return int(v) if not isinstance(v, str) else int(v.strip())
        except (TypeError, ValueError):
            raise PSError(f'Cannot convert value "{to_string(v)}" to type '
                          '"System.Int32".') from None
    if t == "bool":
        return truthy(v)
    if t in ("array", "object[]"):
        return enumerate_(v)
    if t in ("pscustomobject", "management.automation.pscustomobject"):
        return PSObject(v) if isinstance(v, dict) else v
    if t in ("ordered", "hashtable"):
        if not isinstance(v, dict):
            raise PSError(f"Cannot convert value to type [{type_name}].")
        return Hashtable(v)
    raise PSError(f"Unable to find type [{type_name}].")


def _coerce(left: Any, right: Any) -> Any:
    """Right operand converted to the left one's type, as PowerShell compares."""
    if isinstance(left, str):
        return to_string(right)
    if isinstance(left, bool):
        return truthy(right)
    if isinstance(left, (int, float)) and isinstance(right, str):
        try:
            return float(right) if "." in right else int(right)
        except ValueError:
            return right
    return right


def _eq(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    b = _coerce(a, b)
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()
    return a == b


def binop(op: str, a: Any, b: Any) -> Any:  # noqa: C901 - a table of operators
    if op == "+":
        if a is None:
            return b
        if isinstance(a, list):
            return a + enumerate_(b)
        if isinstance(a, str):
            return a + to_string(b)
        if isinstance(a, dict) and isinstance(b, dict):
            return Hashtable({**a, **b})
        return a + _coerce(a, b)
    if op == "-":
        return a - _coerce(a, b)
    if op in ("contains", "notcontains"):
        found = any(_eq(x, b) for x in enumerate_(a) or [None])
        return found if op == "contains" else not found
    if op in ("in", "notin"):
        return binop("contains" if op == "in" else "notcontains", b, a)
    if isinstance(a, list):  # comparison with a list on the left filters it
        return [x for x in a if binop(op, x, b) is True]
    if op == "eq":
        return _eq(a, b)
    if op == "ne":
        return not _eq(a, b)
    if op in ("like", "notlike"):
        hit = fnmatch.fnmatchcase(to_string(a).lower(), to_string(b).lower())
        return hit if op == "like" else not hit
    if op in ("match", "notmatch"):
        hit = re.search(to_string(b), to_string(a), re.I) is not None
        return hit if op == "match" else not hit
    b = _coerce(a, b)
    if isinstance(a, str):
        a, b = a.lower(), to_string(b).lower()
    try:
        return {"gt": a > b, "ge": a >= b, "lt": a < b, "le": a <= b}[op]
    except TypeError:
        raise PSError(f"Cannot compare {to_string(a)!r} and {to_string(b)!r}.") from None


def call_method(obj: Any, name: str, args: list) -> Any:
    if name == "tostring":
        return to_string(obj)
    if hasattr(obj, "ps_call"):
        return obj.ps_call(name, args)
    if isinstance(obj, str):
        text = {"toupper": obj.upper, "tolower": obj.lower, "trim": obj.strip}.get(name)
        if text:
            return text()
        if name == "startswith":
            return obj.lower().startswith(to_string(args[0]).lower())
        if name == "replace":
            return obj.replace(to_string(args[0]), to_string(args[1]))
    if isinstance(obj, dict) and name == "containskey":
        return any(str(k).lower() == to_string(args[0]).lower() for k in obj)
    if obj is None:
        raise PSError("You cannot call a method on a null-valued expression.")
    raise PSError(f"Method invocation failed because [{type(obj).__name__}] does not contain a "
                  f"method named '{name}'.")


class ConsoleOut:
    def __init__(self, interp: Interp) -> None:
        self.interp = interp

    def ps_call(self, name: str, args: list) -> None:
        if name not in ("write", "writeline"):
            raise PSError(f"Method invocation failed: TextWriter has no method '{name}'.")
        text = "".join(to_string(a) for a in args)
        self.interp.out.append(text + ("\r\n" if name == "writeline" else ""))


def static_member(type_node: tuple, name: str) -> Any:
    t = type_node[1].removeprefix("system.")
    if t in ("text.encoding",) and name in ("utf8", "unicode", "ascii"):
        return f"System.Text.{name.upper()}Encoding"
    raise PSError(f"Unable to find type [{type_node[1]}] or its static member {name}.")


def static_call(interp: Interp, type_name: str, name: str, args: list) -> Any:
    t = type_name.removeprefix("system.")
    if t == "management.automation.wildcardpattern" and name == "escape":
        return re.sub(r"([*?\[\]`])", r"`\1", to_string(args[0]))
    raise PSError(f"Unable to find type [{type_name}] or its method {name}.")


# --------------------------------------------------------------------------- formatting
def format_default(obj: Any) -> str:
    """What Out-Default prints for one object (strings as is, objects as a list view)."""
    if isinstance(obj, (str, int, float, bool, PSDate)):
        return to_string(obj) + "\n"
    if isinstance(obj, dict):
        return "\n".join(f"{k} : {to_string(v)}" for k, v in obj.items()) + "\n\n"
    return to_string(obj) + "\n"


def to_json(value: Any, compress: bool) -> str:
    text = json.dumps(to_json_value(value), ensure_ascii=False,
                      indent=None if compress else 4,
                      separators=(",", ":") if compress else (",", ": "))
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("'", "\\u0027"), ("&", "\\u0026")):
        text = text.replace(ch, esc)  # as PowerShell 5.1 escapes them
    return text


# ------------------------------------------------------------------------- generic cmdlets
def _convertto_json(ip: Interp, b: Bound, data: list, ea: str | None) -> list:
    if "inputobject" in b.named:
        value = b.named["inputobject"]
    else:
        value = None if not data else data[0] if len(data) == 1 else data
    return [to_json(value, bool(b.named.get("compress")))]


def _select_object(ip: Interp, b: Bound, data: list, ea: str | None) -> list:
    props = enumerate_(b.get("property", 0))
    expand = b.named.get("expandproperty")
    first = b.named.get("first")
    rows = data[: int(first)] if first is not None else data
    if expand is not None:
        return [v for row in rows for v in enumerate_(member(row, to_string(expand).lower()))]
    if not props:
        return rows
    out = []
    for row in rows:
        obj = PSObject()
        for p in props:
            if isinstance(p, dict):
                label = member(p, "name") or member(p, "n") or member(p, "label") or member(p, "l")
                expr = member(p, "expression") or member(p, "e")
                if isinstance(expr, ScriptBlock):
                    res = ip.call_block(expr, row, has_dollar=True)
                    obj[to_string(label)] = None if not res else res[0] if len(res) == 1 else res
                else:
                    obj[to_string(label)] = member(row, to_string(expr).lower())
            else:
                key = to_string(p)
                real = next((k for k in row if str(k).lower() == key.lower()), key) \
                    if isinstance(row, dict) else key
                obj[real] = member(row, key.lower())
        out.append(obj)
    return out


def _where_object(ip: Interp, b: Bound, data: list, ea: str | None) -> list:
    block = b.get("filterscript", 0)
    if not isinstance(block, ScriptBlock):
        raise PSError("Where-Object needs a script block.", "Where-Object")
    return [x for x in data if truthy(_collapse(ip.call_block(block, x, has_dollar=True)))]


def _foreach_object(ip: Interp, b: Bound, data: list, ea: str | None) -> list:
    block = b.get("process", 0)
    if not isinstance(block, ScriptBlock):
        raise PSError("ForEach-Object needs a script block.", "ForEach-Object")
    return [y for x in data for y in ip.call_block(block, x, has_dollar=True)]


def _collapse(out: list) -> Any:
    return None if not out else out[0] if len(out) == 1 else out


def _out_string(ip: Interp, b: Bound, data: list, ea: str | None) -> list:
    text = "".join(format_default(x).replace("\n", "\r\n") for x in data)
    return [text] if data else [""]


def _write_output(ip: Interp, b: Bound, data: list, ea: str | None) -> list:
    items = [v for x in b.pos for v in enumerate_(x)]
    return items + enumerate_(b.named.get("inputobject"))


def _write_host(ip: Interp, b: Bound, data: list, ea: str | None) -> list:
    text = " ".join(to_string(x) for x in b.pos)
    ip.out.append(text + ("" if b.named.get("nonewline") else "\n"))
    return []


def _write_error(ip: Interp, b: Bound, data: list, ea: str | None) -> list:
    ip.error(to_string(b.get("message", 0)), "Write-Error", ea)
    return []


GENERIC: dict[str, Command] = {
    "convertto-json": _convertto_json,
    "select-object": _select_object, "select": _select_object,
    "where-object": _where_object, "where": _where_object, "?": _where_object,
    "foreach-object": _foreach_object, "%": _foreach_object,
    "out-string": _out_string,
    "out-null": lambda ip, b, d, ea: [],
    "write-output": _write_output, "echo": _write_output, "write": _write_output,
    "write-host": _write_host,
    "write-error": _write_error,
}


def now() -> PSDate:
    return PSDate(datetime.now(UTC).replace(tzinfo=None))
