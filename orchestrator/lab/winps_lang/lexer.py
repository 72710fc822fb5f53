"""The lexical layer of the PowerShell subset's parser: cursor, white space, comments, keywords.

White space is blanks and tabs (new lines only where a statement may continue), `# line` and
`<# block #>` comments and a backtick before a line break (line continuation).
"""

from __future__ import annotations

import re

from .values import PSError

END = ("", "|", ";", "\n", ")", "}")
"""Characters that end a command's arguments or a bare statement ("" is the end of the text)."""


class Lexer:
    """A cursor over the script text: `s` is the text, `i` the position.

    `comma_ok` says whether `,` builds an array where the cursor is (not inside method-call
    argument lists, where it separates the arguments).
    """

    def __init__(self, text: str) -> None:
        self.s, self.i, self.comma_ok = text, 0, True

    def fail(self, msg: str) -> PSError:
        """A parse error naming the line the cursor is on (the caller raises it)."""
        line = self.s.count("\n", 0, self.i) + 1
        return PSError(f"ParserError: line {line}: {msg}")

    def peek(self, n: int = 0) -> str:
        """The character `n` ahead of the cursor, or "" past the end."""
        return self.s[self.i + n] if self.i + n < len(self.s) else ""

    def ws(self, newlines: bool = False) -> None:
        """Skip blanks, comments and backtick line continuations (and new lines if asked)."""
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
        """Skip white space, then consume `ch` or fail with "missing ..."."""
        self.ws(newlines=True)
        if self.peek() != ch:
            raise self.fail(f"missing {ch!r}")
        self.i += 1

    def keyword(self, *words: str) -> str | None:
        """Consume one of `words` (a whole word, any case) and return it lower-cased."""
        m = re.match(r"([A-Za-z]+)(?![\w\-.])", self.s[self.i:])
        if m and m.group(1).lower() in words:
            self.i += m.end()
            return m.group(1).lower()
        return None
