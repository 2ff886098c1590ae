"""The pytest file writer and the reproduce commands of result.json (pure: no services)."""

from __future__ import annotations

import ast

from stormproof.harness.invariants import Verdict, Violation
from stormproof.harness.reproduce import Case, CaseFault, Step, case_from_dict
from stormproof.harness.reproduce.command import attach_reproduce, reproduce_command
from stormproof.harness.reproduce.pytest_file import render_pytest_file
from stormproof.harness.reproduce.steps import describe

CASE = Case(
    invariant="single-active-session",
    steps=(Step(3, 0, "u1", "session.start", "c0", {"appointment_id": "a0-0000-0000-0000-000000000000",
                                                     "idempotency_key": "k1"}, 201, "ok"),
           Step(5, 0, "u2", "session.start", "c0", {"appointment_id": "a0-0000-0000-0000-000000000000",
                                                     "idempotency_key": "k2"}, 201, "ok")),
    faults=(CaseFault("latency", "redis", {"latency": 20}, (0,)),),
    refs={"c0": "t0", "a0-0000-0000-0000-000000000000": "t0.appointment_ids.0", "k1": "key:0", "k2": "key:1"},
    stack={"tenants": 2, "env": {"STORMPROOF_RACE_DELAY_MS": "30"}},
    weakenings=("session-lock", "session-unique-index"),
    app_command=("myapp", "serve", "--port", "{port}"),
    source={"scenario": "session-start-storm", "violation": 2, "message": 'two """ sessions'},
)


def test_the_file_is_python_keeps_the_app_command_and_reads_the_weakenings() -> None:
    text = render_pytest_file(CASE, command="stormproof reproduce r --violation 2", tries=3)
    tree = ast.parse(text)
    names = {node.targets[0].id for node in tree.body if isinstance(node, ast.Assign)}
    assert {"TRIES", "APP_COMMAND", "CASE"} <= names
    assert "APP_COMMAND = ['myapp', 'serve', '--port', '{port}']" in text
    assert 'os.environ.get("STORMPROOF_WEAKEN"' in text
    assert "STORMPROOF_WEAKEN=session-lock,session-unique-index" in text
    assert any(isinstance(n, ast.FunctionDef) and n.name.startswith("test_") for n in tree.body)
    namespace: dict = {}
    exec(compile(text.split("\ndef test_")[0], "generated", "exec"), namespace)  # the data part runs as is
    assert case_from_dict(namespace["CASE"]) == CASE


def test_steps_say_who_sent_what_in_which_group_under_which_fault() -> None:
    lines = describe(CASE)
    assert lines[1] == "app race window: STORMPROOF_RACE_DELAY_MS=30"
    assert lines[2] == "group 1 (sent together); under: latency on redis (latency=20)"
    assert "t0 as u1" in lines[3] and "appointment_id=t0.appointment_ids.0" in lines[3] and "key:0" in lines[3]


def test_every_replayable_violation_gets_its_numbered_command() -> None:
    safety = Verdict("single-active-session", "invalid", "safety",
                     (Violation("single-active-session", "a", (1, 2)), Violation("single-active-session", "b", ())))
    slo = Verdict("slo-latency-p95", "invalid", "slo", (Violation("slo-latency-p95", "c", (4,)),))
    later = Verdict("tenant-isolation", "invalid", "safety", (Violation("tenant-isolation", "d", (7,)),))
    out = attach_reproduce([safety, slo, later], "reports/r 1", ("my app",))
    commands = [v.reproduce for verdict in out for v in verdict.violations]
    assert commands == [reproduce_command("reports/r 1", 1, ("my app",)), None, None,
                        reproduce_command("reports/r 1", 4, ("my app",))]
    assert commands[0] == "stormproof reproduce 'reports/r 1' --violation 1 --app-command 'my app'"
    assert out[0].violations[0].to_dict()["reproduce"] == commands[0]
    assert "reproduce" not in out[0].violations[1].to_dict()


def test_an_over_limit_second_gets_its_command_though_it_names_no_request() -> None:
    """Selection replays a tenant's requests of that second (select._traffic), so the report offers it."""
    over = Violation("rate-limit-enforced", "t had 23", (), {"type": "over-limit", "tenant": "t", "second": 1})
    (verdict,) = attach_reproduce([Verdict("rate-limit-enforced", "invalid", "safety", (over,))], "r")
    assert verdict.violations[0].reproduce == reproduce_command("r", 1)


def test_a_pytest_ini_beside_the_file_loads_only_our_plugin_unless_the_directory_has_a_config(tmp_path) -> None:
    from stormproof.harness.reproduce.pytest_file import write_pytest_file

    fresh = tmp_path / "fresh"
    fresh.mkdir()
    write_pytest_file(CASE, fresh, command="c")
    assert "--disable-plugin-autoload -p stormproof.harness.pytest_plugin" in (fresh / "pytest.ini").read_text()
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "conftest.py").write_text("")
    write_pytest_file(CASE, theirs, command="c")
    assert not (theirs / "pytest.ini").exists()
