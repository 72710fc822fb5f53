"""Fuzz the loader: random YAML and random mutations of the example policies must give
a PolicyError (or load), never any other exception."""

from __future__ import annotations

import string
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.errors import PolicyError
from orchestrator.policy.loader import load_policies

EXAMPLES = Path(__file__).resolve().parents[2] / "policies"
EXAMPLE_TEXTS = [p.read_text() for p in sorted(EXAMPLES.rglob("*.yml"))]

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                    st.floats(allow_nan=False), st.text(max_size=20))
json_like = st.recursive(scalars, lambda children: st.one_of(
    st.lists(children, max_size=4),
    st.dictionaries(st.text(string.ascii_letters, max_size=10), children, max_size=4)),
    max_leaves=20)


def load_text(tmp: Path, text: str) -> None:
    (tmp / "p.yml").write_text(text, encoding="utf-8")
    try:
        load_policies(tmp)
    except PolicyError as exc:
        assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)


@SETTINGS
@given(st.text(max_size=300))
def test_random_text(tmp_path_factory, text: str) -> None:
    load_text(tmp_path_factory.mktemp("fuzz"), text)


@SETTINGS
@given(st.sampled_from(["Window", "Freeze", "Baseline", "PatchPolicy", "FirmwarePolicy",
                        "AssetGroup", "Waiver"]), json_like)
def test_random_specs(tmp_path_factory, kind: str, spec: object) -> None:
    doc = {"apiVersion": "orchestrator/v1", "kind": kind, "metadata": {"name": "x"},
           "spec": spec}
    load_text(tmp_path_factory.mktemp("fuzz"), yaml.safe_dump(doc))


@SETTINGS
@given(st.sampled_from(EXAMPLE_TEXTS), st.data())
def test_mutated_examples(tmp_path_factory, text: str, data: st.DataObject) -> None:
    pos = data.draw(st.integers(0, len(text)))
    cut = data.draw(st.integers(0, 20))
    insert = data.draw(st.text(alphabet=string.printable, max_size=15))
    load_text(tmp_path_factory.mktemp("fuzz"), text[:pos] + insert + text[pos + cut:])


@SETTINGS
@given(st.sampled_from(EXAMPLE_TEXTS), st.data())
def test_mutated_values(tmp_path_factory, text: str, data: st.DataObject) -> None:
    docs = list(yaml.safe_load_all(text))
    doc = data.draw(st.sampled_from(docs))
    spec = doc["spec"]
    key = data.draw(st.sampled_from(sorted(spec)))
    spec[key] = data.draw(json_like)
    load_text(tmp_path_factory.mktemp("fuzz"), yaml.safe_dump_all(docs))


durations = st.from_regex(r"\A(0|[0-9]{1,14}[dhms]|[0-9]{1,3}h[0-9]{1,6}m)\Z")
dates = st.from_regex(r"\A[0-9]{4}-[01][0-9]-[0-3][0-9](T[0-2][0-9]:[0-5][0-9])?\Z")


@SETTINGS
@given(durations, durations, durations, st.one_of(st.none(), dates), st.one_of(st.none(), dates),
       st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Pacific/Kiritimati",
                        "Australia/Lord_Howe"]))
def test_validate_end_to_end_on_extreme_windows(tmp_path_factory, duration, cutoff, grace,
                                                valid_from, valid_until, zone) -> None:
    """validate (schema, cross-checks and the window warnings) answers 0 or 1, never an
    internal error, for windows with extreme durations and dates."""
    import contextlib
    import io

    from orchestrator.cli.main import main

    spec = {"schedule": {"cron": "0 1 * * *"}, "timezone": zone, "duration": duration,
            "cutoff": cutoff, "misfireGrace": grace}
    if valid_from:
        spec["validFrom"] = valid_from
    if valid_until:
        spec["validUntil"] = valid_until
    doc = {"apiVersion": "orchestrator/v1", "kind": "Window", "metadata": {"name": "w"},
           "spec": spec}
    tmp = tmp_path_factory.mktemp("fuzz")
    (tmp / "p.yml").write_text(yaml.safe_dump(doc))
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["--policies", str(tmp), "--state", f"sqlite:///{tmp}/s.db", "validate"])
    assert code in (0, 1)
    assert "internal error" not in err.getvalue()
