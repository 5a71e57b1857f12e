"""Rules: matcher semantics, validation with file/rule/field, evaluation, templates, hot reload."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import capture_logs

from bridge.domain import Alert, AlertStatus, ComponentStatus, PageComponent, PageDirectory, PageInfo, Source
from bridge.rules import RulesError, RulesHolder, load_rules
from bridge.rules.matchers import MatcherError, parse_matcher
from tests.rules.directory import directory_from_seed

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]


def alert(labels: dict[str, str], status: AlertStatus = AlertStatus.FIRING, fp: str | None = None) -> Alert:
    return Alert(
        Source.ALERTMANAGER,
        fp or "|".join(f"{k}={v}" for k, v in sorted(labels.items())),
        labels,
        {"summary": "host-a is on fire"},
        status,
        T0,
        None,
        "",
        T0,
    )


@pytest.mark.parametrize(
    ("matcher", "labels", "expected"),
    [
        ('foo = "bar"', {"foo": "bar"}, True),
        ('foo="bar"', {"foo": "baz"}, False),
        ("foo=bar", {"foo": "bar"}, True),
        ('foo != "bar"', {"foo": "baz"}, True),
        ('foo != "bar"', {}, True),
        ('foo = ""', {}, True),  # a missing label equals the empty string
        ('foo =~ "ba."', {"foo": "bar"}, True),
        ('foo =~ "ba"', {"foo": "bar"}, False),  # fully anchored
        ('foo =~ "a|bar"', {"foo": "bar"}, True),
        ('foo =~ "b"', {"foo": "abc"}, False),
        ('foo !~ "ba."', {"foo": "bar"}, False),
        ('foo !~ "x.*"', {}, True),
        ('foo =~ ".*"', {}, True),
        ('foo =~ ".+"', {}, False),
        ('foo = "a\\"b"', {"foo": 'a"b'}, True),
        ('foo = "a\\\\b"', {"foo": "a\\b"}, True),
        ('foo =~ "a.b"', {"foo": "a\nb"}, False),
    ],
)
def test_matcher_semantics(matcher: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_matcher(matcher).matches(labels) is expected


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "=foo",
        "foo",
        'foo == "x"',
        'foo =~ "("',
        'foo =~ "(?=x)"',
        'foo =~ "(a)\\1"',
        'foo = "unterminated',
    ],
)
def test_bad_matchers(bad: str) -> None:
    with pytest.raises(MatcherError):
        parse_matcher(bad)


@given(st.text(max_size=30))
def test_matcher_parser_only_raises_matcher_error(text: str) -> None:
    try:
        parse_matcher(text)
    except MatcherError:
        pass


def write(tmp_path: Path, text: str, name: str = "rules.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_example_rules_pass_check_offline_and_against_the_seed() -> None:
    load_rules(ROOT / "rules")
    ruleset = load_rules(ROOT / "rules", directory_from_seed())
    api = next(r for r in ruleset.rules if r.name == "api-availability")
    assert api.page == "01HSANDBOXPAGE000000000000"
    assert api.components == (("01HCOMPAPI0000000000000000", "API"),)


def test_validation_names_file_rule_and_field(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
status_page: Acme Status
rules:
  - name: one
    matchers: ['a =~ "("']
    components: [API]
  - name: two
    components: [Nope]
    status: broken
  - name: three
    components: [API]
    open_after: soon
    surprise: 1
  - name: four
    components: [Dashboard]
    incident: {name: "{{ labels.x | nosuchfilter }}"}
""",
    )
    with pytest.raises(RulesError) as err:
        load_rules(path, directory_from_seed())
    text = str(err.value)
    assert f"{path}: rule 'one': matchers[0]" in text
    assert f"{path}: rule 'two': status" in text
    assert f"{path}: rule 'three': open_after" in text
    assert f"{path}: rule 'three': surprise" in text
    assert f"{path}: rule 'four': incident.name: template error" in text


def test_flap_keys_are_checked_in_defaults_and_rules(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
status_page: Acme Status
rules:
  - name: one
    components: [API]
    flap_window: often
  - name: two
    components: [API]
    flap_threshold: 2
    flap_window: 90s
    incident: {intermittent_message: "{{ labels.x | nosuchfilter }}"}
""",
    )
    with pytest.raises(RulesError) as err:
        load_rules(path, directory_from_seed())
    text = str(err.value)
    assert f"{path}: rule 'one': flap_window" in text
    assert f"{path}: rule 'two': incident.intermittent_message: template error" in text
    ok = write(
        tmp_path,
        """
status_page: Acme Status
defaults: {flap_threshold: 0}
rules:
  - {name: two, components: [API], flap_threshold: 2, flap_window: 90s}
  - {name: three, components: [Database]}
""",
        name="ok.yaml",
    )
    bad_default = write(
        tmp_path, "status_page: Acme Status\ndefaults: {flap_threshold: -1}\nrules: []\n", "d.yaml"
    )
    with pytest.raises(RulesError, match="defaults.flap_threshold"):
        load_rules(bad_default, directory_from_seed())
    two, three = load_rules(ok, directory_from_seed()).rules
    assert (two.timings.flap_threshold, two.timings.flap_window.total_seconds()) == (2, 90)
    assert three.timings.flap_threshold == 0


def test_unknown_and_ambiguous_components(tmp_path: Path) -> None:
    directory = PageDirectory(
        (PageInfo("p", "P", (PageComponent("a", "API", "EU"), PageComponent("b", "API", "US"))),)
    )
    path = write(
        tmp_path,
        "status_page: P\nrules:\n  - {name: r, components: [API]}\n  - {name: s, components: [Nope]}\n",
    )
    with pytest.raises(RulesError) as err:
        load_rules(path, directory)
    assert "ambiguous" in str(err.value)
    assert "no component 'Nope'" in str(err.value)
    ok = write(tmp_path, "status_page: P\nrules:\n  - {name: r, components: [US/API]}\n", "ok.yaml")
    assert load_rules(ok, directory).rules[0].components == (("b", "US/API"),)


def test_evaluation_worst_wins_group_by_and_continue(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
status_page: Acme Status
rules:
  - name: api
    matchers: ['alertname = "APIDown"']
    components: [API]
    status: {from_label: severity, map: {critical: full_outage, warning: degraded_performance}}
    group_by: [region]
    continue: true
    incident:
      name: "API down in {{ labels.region }}"
      message: "{{ annotations.public_summary | default('We are on it.') }}"
  - name: catch-all
    components: [Database]
    status: degraded_performance
""",
    )
    rules = load_rules(path)
    ev = rules.evaluate(
        [
            alert({"alertname": "APIDown", "severity": "warning", "region": "eu"}),
            alert({"alertname": "APIDown", "severity": "critical", "region": "eu", "i": "2"}),
            alert({"alertname": "APIDown", "severity": "critical", "region": "us"}),
            alert({"alertname": "Other"}),
            alert({"alertname": "APIDown", "region": "eu", "i": "3"}, AlertStatus.RESOLVED),
        ]
    )
    assert set(ev.groups) == {'api{region="eu"}', 'api{region="us"}', "catch-all"}
    eu = [i for i in ev.impacts if i.group_key == 'api{region="eu"}']
    assert {i.status for i in eu} == {ComponentStatus.DEGRADED_PERFORMANCE, ComponentStatus.FULL_OUTAGE}
    assert eu[0].incident_name == "API down in eu"
    assert eu[0].message == "We are on it."  # no raw annotations leak by default
    assert len([i for i in ev.impacts if i.rule == "catch-all"]) == 4  # continue: true lets APIDown through
    resolved_key = (Source.ALERTMANAGER.value, "alertname=APIDown|i=3|region=eu")
    assert ev.matches[resolved_key] == ["api", "catch-all"]
    assert not [i for i in ev.impacts if i.alert_fingerprint == "alertname=APIDown|i=3|region=eu"]


def test_template_sandbox_and_render_fallback(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
status_page: Acme Status
rules:
  - name: r
    components: [API]
    incident:
      name: "{{ ''.__class__.__mro__ }}"
      message: "{{ labels.missing }}"
""",
    )
    ev = load_rules(path).evaluate([alert({"a": "b"})])
    group = ev.groups["r"]
    assert "class" not in group.name
    assert group.name == "API disruption"
    assert group.message == "We are investigating problems affecting API."
    # Evaluation is pure: the failure comes back with it, and only the holder logs it, once.
    assert [what for what, _ in ev.template_failures] == ["r.incident.name", "r.incident.message"]
    holder = RulesHolder(path)
    with capture_logs() as logs:
        load_rules(path).evaluate([alert({"a": "b"})])
        assert not logs
        holder.evaluate([alert({"a": "b"})])
        holder.evaluate([alert({"a": "b"})])
    warned = [e["template"] for e in logs if e["event"] == "template failed; using the rule's default text"]
    assert warned == ["r.incident.name", "r.incident.message"]


def test_hot_reload_keeps_previous_rules_on_error(tmp_path: Path) -> None:
    path = write(tmp_path, "status_page: Acme Status\nrules:\n  - {name: r, components: [API]}\n")
    calls: list[int] = []
    holder = RulesHolder(path, on_reload=lambda: calls.append(1))
    path.write_text("rules: [broken")
    assert holder.changed_on_disk()
    assert holder.reload() is False
    assert holder.last_error is not None
    assert [r.name for r in holder.current.rules] == ["r"]
    path.write_text("status_page: Acme Status\nrules:\n  - {name: s, components: [API]}\n")
    assert holder.reload() is True
    assert _last_error(holder) is None  # through a call: mypy keeps the narrowing above otherwise
    assert [r.name for r in holder.current.rules] == ["s"]
    assert calls == [1]


def _last_error(holder: RulesHolder) -> str | None:
    return holder.last_error
