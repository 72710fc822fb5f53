"""The expression grammar of the PowerShell subset (operators, literals, members, strings).

Nodes are tuples whose first item names the kind: ("str", s), ("num", n), ("xstr", parts),
("var", name), ("array", items), ("paren", stmt), ("sub", body), ("arraysub", body),
("hash", [(key, stmt)]), ("block", body), ("type", name), ("cast", type, node),
("member", node, name), ("static", type_node, name), ("invoke", node, name, args),
("index", node, idx), ("not", node), ("neg", node), ("binop", op, left, right).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from .lexer import END, Lexer


class ExpressionParser(Lexer):
    """Parses expressions; statement-level parsing (needed inside `(...)`, `{...}`) is Parser's."""

    def statement(self) -> tuple:
        """One statement (implemented by `parser.Parser`)."""
        raise NotImplementedError

    def statements(self, end: str) -> list:
        """Statements up to `end` (implemented by `parser.Parser`)."""
        raise NotImplementedError

    def block(self) -> list:
        """A `{ ... }` block's statements (implemented by `parser.Parser`)."""
        raise NotImplementedError

    def left_assoc(self, operator: str, operand: Callable[[], tuple]) -> tuple:
        """`x op x op x` grouped from the left; `operator` is a regex whose group 1 is the op."""
        left = operand()
        while True:
            save = self.i
            self.ws()
            m = re.match(operator, self.s[self.i:], re.I)
            if not m:
                self.i = save
                return left
            self.i += m.end()
            self.ws(True)
            left = ("binop", m.group(1).lower(), left, operand())

    def comma_list(self, item: Callable[[], tuple], enabled: bool = True) -> tuple:
        """`x, x, x` as ("array", items) (one item as itself); `enabled=False` reads one."""
        items = [item()]
        while enabled:
            save = self.i
            self.ws()
            if self.peek() != ",":
                self.i = save
                break
            self.i += 1
            self.ws(True)
            items.append(item())
        return items[0] if len(items) == 1 else ("array", items)

    def expression(self) -> tuple:
        """`a -and b -or c`: left to right, as PowerShell (no precedence between them)."""
        return self.left_assoc(r"-(and|or|xor)(?![\w])", self.comparison)

    CMP = (r"-[ic]?(eq|ne|gt|ge|lt|le|like|notlike|match|notmatch|contains|notcontains|in|"
           r"notin|band|bor)(?![\w])")

    def comparison(self) -> tuple:
        """`a -eq b`, `-like`, `-match`, `-contains`, `-in`, ... (also -i/-c forms), and the
        bitwise `-band` / `-bor` (PowerShell gives them the comparison operators' precedence)."""
        return self.left_assoc(self.CMP, self.additive)

    def additive(self) -> tuple:
        """`a + b - c`."""
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
        """`a, b, c` (where `comma_ok`)."""
        return self.comma_list(self.unary, self.comma_ok)

    def unary(self) -> tuple:
        """`-not x`, `!x`, `-1`, and casts `[type] x`."""
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
        """A primary followed by `.Member`, `.Method(args)`, `::Static` and `[index]`."""
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
        """The `(a, b)` of a method call; the cursor is on the `(`."""
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
        """A literal, variable, `(...)`, `$(...)`, `@(...)`, `@{...}`, `{...}` or `[Type]`."""
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
        """A "double-quoted" string: backtick escapes, `$var` and `$(...)` expanded later."""
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
        """`@{ key = statement; ... }`; the cursor is on the `@`."""
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

