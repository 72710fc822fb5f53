"""The evaluator of the PowerShell subset: runs parsed scripts against a set of commands.

Terminating errors (`PSError`) unwind to the nearest `try/catch`; non-terminating ones
(`Interp.error`) follow `-ErrorAction` / `$ErrorActionPreference` and, when shown, make the exit
code 1 if the last statement had one, as `powershell -Command` does.
"""

from __future__ import annotations

from typing import Any

from .cmdlets import GENERIC
from .formatting import format_default
from .members import ConsoleOut, call_method, member, static_call, static_member
from .operators import binop, cast
from .parser import Parser
from .values import (
    Bound,
    Command,
    ErrorRecord,
    ExitScript,
    Hashtable,
    PSError,
    PSType,
    Return,
    ScriptBlock,
    collapse,
    enumerate_,
    to_string,
    truthy,
)

SWITCHES = {"compress", "force", "nonewline", "passthru", "recurse", "enumsasstrings",
            "asstring", "whatif", "confirm", "expandproperty_", "unique", "list", "raw",
            "allowstartifonbatteries", "dontstopifgoingonbatteries", "hidden"}
"""Parameters that never take the next argument as their value."""


class Interp:
    """Runs one script: variables in a stack of scopes, stdout/stderr text, the commands known.

    `commands` (lower-case name -> Command) add to or replace the generic cmdlets; `env` is what
    `$env:NAME` reads.
    """

    def __init__(self, commands: dict[str, Command], env: dict[str, str]) -> None:
        self.commands = {**GENERIC, **commands}
        self.env = {k.lower(): v for k, v in env.items()}
        self.scopes: list[dict[str, Any]] = [{"erroractionpreference": "Continue"}]
        self.out: list[str] = []
        self.err: list[str] = []
        self.failed = False  # $? of the statement running now is False

    # entry
    def run(self, script: str) -> tuple[str, str, int]:
        """Parse and run a script: (stdout, stderr, exit code), as `powershell -Command` gives."""
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
        """`$name`: automatic variables, `$env:X`, then the scopes from the innermost out."""
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
        """`$name = value` in the innermost scope."""
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
        """Run statements; their output objects in order."""
        out: list = []
        for st in body:
            out += self.exec_stmt(st)
        return out

    def value_of(self, st: tuple) -> Any:
        """A statement as a value: a lone expression as is, pipeline output collapsed."""
        if st[0] == "pipeline" and len(st[1]) == 1 and st[1][0][0] == "expr":
            return self.eval(st[1][0][1])
        return collapse(self.exec_stmt(st))

    def exec_stmt(self, st: tuple) -> list:  # noqa: C901 - one branch per statement kind
        """Run one statement; its output objects."""
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
        """Store `value` in a variable, a property (of a property bag, or an object's settable
        one: `ps_set`), or (ignored) `[Console]::OutputEncoding`."""
        if target[0] == "var":
            self.set_var(target[1], value)
        elif target[0] == "static" and target[1] == ("type", "console"):
            return  # [Console]::OutputEncoding = ...: our stdout is UTF-8 already
        elif target[0] == "member":
            obj = self.eval(target[1])
            if isinstance(obj, dict):
                obj[target[2]] = value
            elif hasattr(obj, "ps_set"):
                obj.ps_set(target[2], value)
            else:
                raise PSError(f"The property '{target[2]}' cannot be found on this object. "
                              "Verify that the property exists and can be set.")
        else:
            raise PSError("The assignment expression is not valid.")

    def pipeline(self, elems: list) -> list:
        """Run `a | b | c`: each command gets the previous one's output as its input."""
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
        """Call a command (or `& { block }`) with its parsed arguments and pipeline input."""
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
        """Run a script block in a new scope (with `$_` = `dollar` if `has_dollar`)."""
        self.scopes.append({"_": dollar} if has_dollar else {})
        try:
            return self.exec_block(block.body)
        except Return as ret:
            return ret.values
        finally:
            self.scopes.pop()

    # expressions
    def eval(self, node: tuple) -> Any:  # noqa: C901 - one branch per node kind
        """The value of an expression node."""
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
            return collapse(self.exec_block(node[1]))
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
