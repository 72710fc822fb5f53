"""Hostile YAML gets a one-line `file:line:col` error, fast: anchors and aliases (alias
bombs), too many values, integers too large to print."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from orchestrator.errors import PolicyError
from orchestrator.policy import yamlpos
from orchestrator.policy.loader import load_policies
from orchestrator.policy.yamlpos import ALIAS_MESSAGE, YamlProblem, load_documents

GOLDEN = Path(__file__).parent / "golden"
TOO_LARGE = "number too large (more than 64 bits); put it in quotes if it is text"
PURE = "\ufeff"  # a byte order mark sends a text down the pure-Python parser


def problem(text: str) -> tuple[int, int, str]:
    with pytest.raises(YamlProblem) as exc:
        list(load_documents(text))
    return (exc.value.line, exc.value.column, exc.value.message)


def test_alias_bomb_is_refused_at_once() -> None:
    """The 600-byte billion laughs ran out of memory after 16 s."""
    started = time.monotonic()
    with pytest.raises(PolicyError) as exc:
        load_policies(GOLDEN / "alias-bomb" / "policy.yml")
    assert time.monotonic() - started < 2
    assert exc.value.problems == [f"{GOLDEN}/alias-bomb/policy.yml:6:6: {ALIAS_MESSAGE}"]


@pytest.mark.parametrize("prefix", ["", PURE], ids=["libyaml", "pure"])
@pytest.mark.parametrize(("text", "where"), [
    ("a: &x 1\n", (1, 4)),  # an anchor alone
    ("a: 1\nb: *x\n", (2, 4)),  # an alias to nothing
    ("a: &x [1, 2]\nb: *x\n", (1, 4)),
    ("base: &b {x: 1}\nm:\n  <<: *b\n", (1, 7)),  # a merge key needs an alias
    ("- &x a\n- [*x, *x]\n", (1, 3)),
])
def test_anchors_and_aliases_are_refused(prefix: str, text: str, where: tuple[int, int]) -> None:
    assert problem(prefix + text) == (*where, ALIAS_MESSAGE)


def test_merge_key_bomb() -> None:
    lines = ["a: &a {k0: 1, k1: 1, k2: 1, k3: 1, k4: 1, k5: 1, k6: 1, k7: 1, k8: 1}"]
    for i, name in enumerate("bcdefghi"):
        prev = "abcdefghi"[i]
        lines.append(f"{name}: &{name} {{<<: [" + ", ".join([f"*{prev}"] * 9) + "]}")
    started = time.monotonic()
    assert problem("\n".join(lines) + "\n") == (1, 4, ALIAS_MESSAGE)
    assert time.monotonic() - started < 2


def test_shared_nodes_are_refused_whoever_composed_them() -> None:
    """Defence in depth: a node tree with an alias from any composer is not expanded."""
    node = yaml.compose("a: &x [1, 2]\nb: *x\n", Loader=yaml.SafeLoader)
    with pytest.raises(YamlProblem) as exc:
        yamlpos._Builder().build(node)
    assert (exc.value.line, exc.value.column, exc.value.message) == (1, 4, ALIAS_MESSAGE)


def test_documents_do_not_share_the_alias_guard() -> None:
    text = "".join(f"---\nkey{i}: [value, {i}]\n" for i in range(2000))
    assert len(list(load_documents(text))) == 2000
    assert len(list(load_documents(PURE + text))) == 2000


@pytest.mark.parametrize("prefix", ["", PURE], ids=["libyaml", "pure"])
def test_too_many_values(prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yamlpos, "MAX_NODES", 1000)
    ok = "a: [" + ", ".join(["x"] * 997) + "]\n"  # 999 values with the mapping and its key
    assert len(list(load_documents(prefix + ok))) == 1
    two_docs = ok + "---\n" + ok
    line, column, message = problem(prefix + two_docs)
    assert (line, message) == (3, "more than 1000 values in one file; split it into several "
                                  "files")
    # the 1001st value: the mapping, its key, the list, then items at columns 5, 8, 11, ...
    assert problem(prefix + "a: [" + ", ".join(["x"] * 1000) + "]\n")[:2] == (1, 5 + 3 * 997)


@pytest.mark.parametrize("prefix", ["", PURE], ids=["libyaml", "pure"])
@pytest.mark.parametrize(("text", "where"), [
    ("a: " + "9" * 4400 + "\n", (1, 4)),  # int() refuses more than 4,300 digits
    ("a: 0x" + "f" * 5000 + "\n", (1, 4)),  # hexadecimal has no such limit, nor does str()
    ("a: 18446744073709551616\n", (1, 4)),  # 2**64
    ("a: -18446744073709551616\n", (1, 4)),
    ("a: 0b1" + "0" * 64 + "\n", (1, 4)),
    ("a: " + ":".join(["59"] * 20) + "\n", (1, 4)),  # YAML 1.1 base 60
    ("? " + "9" * 5000 + "\n: x\n", (1, 3)),  # as a key
])
def test_huge_integers(prefix: str, text: str, where: tuple[int, int]) -> None:
    assert problem(prefix + text) == (*where, TOO_LARGE)


def test_integers_up_to_64_bits_are_kept() -> None:
    doc = next(load_documents("a: 18446744073709551615\nb: -18446744073709551615\n"))
    assert doc.data == {"a": 2**64 - 1, "b": -(2**64 - 1)}


def test_huge_integer_golden_ends_in_one_line_not_internal_error(tmp_path: Path) -> None:
    import contextlib
    import io

    from orchestrator.cli.main import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["--policies", str(GOLDEN / "huge-integer"), "--state",
                     f"sqlite:///{tmp_path}/s.db", "validate"])
    assert code == 1
    lines = [line for line in err.getvalue().splitlines() if TOO_LARGE in line]
    assert [line.split(": ", 1)[0] for line in lines] == [
        f"{GOLDEN}/huge-integer/hex.yml:8:20", f"{GOLDEN}/huge-integer/policy.yml:8:15"]
    assert "internal error" not in err.getvalue()
