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

    @staticmethod
    def _json(doc: str) -> str:
        """PostgreSQL's JSON of a details text. Its JSON functions refuse a document holding
        \\u0000 (text cannot hold NUL), which a host's output may put in a record: that
        escape is read as U+FFFD, so one such record cannot stop every report of a period.
        (json, not jsonb: no key is dropped or reordered.)"""
        return f"(replace({doc}, E'\\\\u0000', E'\\\\uFFFD'))::json"

    def text(self, doc: str, key: str) -> str:
        """A top-level string (or number, as text) of a JSON document column or element.
        `key` is one of ours, never user input."""
        if self.name == "sqlite":
            return f"CAST(json_extract({doc}, '$.{key}') AS TEXT)"
        return f"({self._json(doc)} ->> '{key}')"

    def element_text(self, element: str, key: str) -> str:
        """A key of an element that `each` produced."""
        if self.name == "sqlite":
            return f"CAST(json_extract({element}.value, '$.{key}') AS TEXT)"
        return f"({element}.value ->> '{key}')"

    def length(self, doc: str, key: str) -> str:
        """The length of a top-level array (0 when missing or not an array)."""
        if self.name == "sqlite":
            return (f"COALESCE(CASE json_type({doc}, '$.{key}') WHEN 'array' THEN "
                    f"json_array_length({doc}, '$.{key}') END, 0)")
        return (f"COALESCE(CASE json_typeof({self._json(doc)} -> '{key}') WHEN 'array' THEN "
                f"json_array_length({self._json(doc)} -> '{key}') END, 0)")

    def each(self, doc: str, key: str, alias: str) -> str:
        """A join producing one row (`alias`.value) per element of a top-level array."""
        if self.name == "sqlite":
            return (f"JOIN json_each(CASE json_type({doc}, '$.{key}') WHEN 'array' THEN "
                    f"json_extract({doc}, '$.{key}') ELSE '[]' END) AS {alias} ON 1 = 1")
        return (f"CROSS JOIN LATERAL json_array_elements(CASE json_typeof({self._json(doc)} "
                f"-> '{key}') WHEN 'array' THEN {self._json(doc)} -> '{key}' ELSE '[]'::json "
                f"END) AS {alias}(value)")

    def days(self, later: str, earlier: str) -> str:
        """Days (fractional) from `earlier` to `later`: record times or ISO dates; NULL when
        either is NULL or does not start as a date (YYYY-MM-DD), in both dialects. Only
        the first 19 characters are read (date and time, UTC)."""
        if self.name == "sqlite":
            def part(x: str) -> str:
                return (f"CASE WHEN {x} GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]*' "
                        f"THEN julianday(substr({x}, 1, 19)) END")
            return f"({part(later)} - {part(earlier)})"

        def stamp(x: str) -> str:
            return (f"CASE WHEN {x} ~ '^[0-9]{{4}}-[0-1][0-9]-[0-3][0-9]([T ][0-2][0-9]:"
                    f"[0-5][0-9]:[0-5][0-9]|$|[^0-9:])' THEN CAST(substr({x}, 1, 19) AS "
                    f"timestamp) END")
        return f"(EXTRACT(EPOCH FROM ({stamp(later)} - {stamp(earlier)})) / 86400.0)"

    def binary(self, expr: str) -> str:
        """`expr` ordered by its bytes (SQLite's order; PostgreSQL's follows the server's
        collation otherwise)."""
        return expr if self.name == "sqlite" else expr + ' COLLATE "C"'

    def window_of(self, occurrence: str) -> str:
        """The window name of an occurrence id (`name@start`)."""
        if self.name == "sqlite":
            return (f"CASE WHEN instr({occurrence}, '@') > 0 THEN substr({occurrence}, 1, "
                    f"instr({occurrence}, '@') - 1) ELSE {occurrence} END")
        return f"split_part({occurrence}, '@', 1)"
