"""The statement grammar of the PowerShell subset: scripts, blocks, control flow, pipelines.

Statement nodes: ("pipeline", elements) with elements ("cmd", name_or_node, args) or
("expr", node); ("assign", target, stmt); ("if", [(cond, body)], else_body); ("try", body,
catch_body, finally_body); ("foreach", var, stmt, body); ("exit" | "return" | "throw", node).
Command arguments are ("param", name, value_or_None) and ("arg", node).
"""

from __future__ import annotations

import re

from .expressions import ExpressionParser
from .lexer import END
from .values import PSError


class Parser(ExpressionParser):
    """The PowerShell-subset parser: `Parser(text).script()` gives the statement list."""

    def script(self) -> list:
        """The whole text as a list of statements; anything left over is an error."""
        body = self.statements("")
        if self.i < len(self.s):
            raise self.fail(f"unexpected {self.peek()!r}")
        return body

    def statements(self, end: str) -> list:
        """Statements separated by `;` or new lines, up to `end` (not consumed)."""
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
        """`{ statements }`."""
        self.expect("{")
        body = self.statements("}")
        self.expect("}")
        return body

    def statement(self) -> tuple:
        """`if`, `try`, `foreach`, `exit`/`return`/`throw`, an assignment or a pipeline."""
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
        """`element | element | ...`."""
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
        """A command with its arguments (`name ...`, `& target ...`) or an expression."""
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
        """A command's arguments: `-Name`, `-Name:value`, and (comma lists of) values."""
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
        """A command argument, or several separated by commas (an array)."""
        return self.comma_list(self.arg_value)

    def arg_value(self) -> tuple:
        """One command argument: an expression-like value or a bare word/number."""
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
