"""The SQL that differs between the stores: placeholders, JSON in `details`, days between
two times. Report queries (queries.py) are written once with these pieces.

Record times are fixed-width UTC text (`2026-11-14T22:00:03.123456Z`) and compare as text;
dates in details are `YYYY-MM-DD`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Dialect:
    name: str  # "sqlite" | "postgresql"

    @property
    def mark(self) -> str:
        """The driver's placeholder."""
        return "?" if self.name == "sqlite" else "%s"

    def text(self, doc: str, key: str) -> str:
        """A top-level string (or number, as text) of a JSON document column or element.
        `key` is one of ours, never user input."""
        if self.name == "sqlite":
            return f"json_extract({doc}, '$.{key}')"
        return f"(({doc})::jsonb ->> '{key}')"

    def element_text(self, element: str, key: str) -> str:
        """A key of an element that `each` produced."""
        if self.name == "sqlite":
            return f"json_extract({element}.value, '$.{key}')"
        return f"({element}.value ->> '{key}')"

    def length(self, doc: str, key: str) -> str:
        """The length of a top-level array (0 when missing or not an array)."""
        if self.name == "sqlite":
            return (f"COALESCE(CASE json_type({doc}, '$.{key}') WHEN 'array' THEN "
                    f"json_array_length({doc}, '$.{key}') END, 0)")
        return (f"COALESCE(CASE jsonb_typeof(({doc})::jsonb -> '{key}') WHEN 'array' THEN "
                f"jsonb_array_length(({doc})::jsonb -> '{key}') END, 0)")

    def each(self, doc: str, key: str, alias: str) -> str:
        """A join producing one row (`alias`.value) per element of a top-level array."""
        if self.name == "sqlite":
            return (f"JOIN json_each(CASE json_type({doc}, '$.{key}') WHEN 'array' THEN "
                    f"json_extract({doc}, '$.{key}') ELSE '[]' END) AS {alias} ON 1 = 1")
        return (f"CROSS JOIN LATERAL jsonb_array_elements(CASE jsonb_typeof(({doc})::jsonb "
                f"-> '{key}') WHEN 'array' THEN ({doc})::jsonb -> '{key}' ELSE '[]'::jsonb "
                f"END) AS {alias}(value)")

    def days(self, later: str, earlier: str) -> str:
        """Days (fractional) from `earlier` to `later`: record times or ISO dates; NULL when
        either is NULL. Only the first 19 characters are read (date and time, UTC)."""
        if self.name == "sqlite":
            return (f"(julianday(substr({later}, 1, 19)) - julianday(substr({earlier}, 1, 19)))")
        return (f"(EXTRACT(EPOCH FROM (CAST(substr({later}, 1, 19) AS timestamp) - "
                f"CAST(substr({earlier}, 1, 19) AS timestamp))) / 86400.0)")

    def window_of(self, occurrence: str) -> str:
        """The window name of an occurrence id (`name@start`)."""
        if self.name == "sqlite":
            return (f"CASE WHEN instr({occurrence}, '@') > 0 THEN substr({occurrence}, 1, "
                    f"instr({occurrence}, '@') - 1) ELSE {occurrence} END")
        return f"split_part({occurrence}, '@', 1)"
