"""``stormproof run/up/report/doctor`` on bad input: exit 2, one line naming the cause and the fix, nothing started.

"Nothing started" is proven by stack constructors that fail the test if they
are ever called, and by an ``--out`` directory that stays empty: a bad plan
leaves no run directory that could be mistaken for a result.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from stormproof.harness import cli
from stormproof.harness.plan import RunOptions

STORMPROOF = shutil.which("stormproof", path=os.path.dirname(sys.executable)) or "stormproof"


class _Started(AssertionError):
    """A service was about to start although the input was bad."""


@pytest.fixture
def no_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise _Started("a stack was constructed for a run that should have stopped at its plan")

    import stormproof.harness.runner.run as run
    import stormproof.harness.stack as stack
    import stormproof.harness.stack.docker as docker

    for module, name in ((run, "LocalStack"), (run, "ExternalSystem"), (stack, "LocalStack"),
                         (docker, "DockerStack")):
        monkeypatch.setattr(module, name, refuse)
    monkeypatch.setattr(stack, "EphemeralPostgres", refuse)


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = cli.main(argv)
    err = capsys.readouterr().err
    return code, err


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def _toml(tmp_path: Path, body: str, name: str = "mine.toml") -> Path:
    path = tmp_path / name
    path.write_text('name = "mine"\nduration_s = 5\ninvariants = ["tenant-isolation"]\n' + body)
    return path


LATENCY = '[[faults]]\nat = 1\nduration = 2\nfault = "latency"\ntarget = "postgres"\n'


@pytest.mark.parametrize(
    ("body", "flags", "expected"),
    [
        ("", ["--duration", "-5"], "command line: --duration: must be above 0, got -5"),
        ("", ["--duration", "0"], "command line: --duration: must be above 0"),
        ("", ["--users", "0"], "command line: --users: must be at least 1, got 0"),
        ("", ["--weaken", "sesion-lock"], "command line: --weaken: unknown weakening 'sesion-lock'; known: "),
        ("", ["--app-url", "http://127.0.0.1:9"], "command line: --app-url: needs --database-url"),
        (LATENCY + "params = { latncy = 40 }\n", [],
         "mine.toml: faults[0].params.latncy: unknown field; allowed: jitter, latency, stream, toxicity"),
        (LATENCY.replace("postgres", "postgress"), [],
         "mine.toml: faults[0].target: 'postgress' is not a link of the local backend; allowed: app, postgres"),
        (LATENCY.replace("latency", "latncy"), [], "mine.toml: faults[0].fault: unknown 'latncy'; allowed: 'latency'"),
        (LATENCY.replace('"latency"', '"pause"').replace("postgres", "worker3-pool"), ["--backend", "docker"],
         "mine.toml: faults[0].target: 'worker3-pool' is not a process of the docker backend; allowed: "),
        (LATENCY, ["--app-url", "http://127.0.0.1:9", "--database-url", "postgresql://u@127.0.0.1:9/d"],
         "mine.toml: faults[0]: the external backend offers no link faults"),
        ('weaken = ["session-lok"]\n', [], "mine.toml: weaken: unknown weakening 'session-lok'; known: "),
        ('expect = ["job-applied-once"]\n', [], "mine.toml: expect: 'job-applied-once' is expected to break"),
        ("[load]\nusers = 0\n", [], "mine.toml: load.users: Input should be greater than or equal to 1, got 0"),
        ("[sla]\nerror_rate_max = 0.1\n", [], "mine.toml: sla: unknown field; allowed: "),
        ("[stack]\nshunya = { fail_rat = 0.5 }\n", [], "mine.toml: stack.shunya: not a Shunya stub config"),
        ("duration = 3\n", [], "mine.toml: duration: unknown field; allowed: description, duration_s"),
        ("name = \n", [], "mine.toml: not valid TOML"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_starts(body: str, flags: list[str], expected: str,
                                                         tmp_path: Path, no_stack: None,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    path = _toml(tmp_path, body)
    out = tmp_path / "runs"
    code, err = _run(["run", str(path), "--out", str(out), "--quiet", *flags], capsys)
    assert code == 2
    line = _one_line(err)
    assert line.startswith("stormproof: error: ") and expected in line, line
    assert not out.exists(), "a bad plan left a run directory"


def test_a_missing_file_says_file_not_found(tmp_path: Path, no_stack: None, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, err = _run(["run", "./nope.toml", "--out", "runs"], capsys)
    assert code == 2 and _one_line(err) == "stormproof: error: nope.toml: file not found"
    code, err = _run(["run", "nope", "--out", "runs"], capsys)
    assert code == 2 and "no scenario named 'nope'; built-in: " in _one_line(err)
    assert not (tmp_path / "runs").exists()


def test_all_scenarios_are_planned_before_the_first_runs(tmp_path: Path, no_stack: None,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """--all on a backend already running: scenarios with faults cannot run there, so nothing runs, not even
    the scenarios before them."""
    code, err = _run(["run", "--all", "--app-url", "http://127.0.0.1:9", "--database-url",
                      "postgresql://u@127.0.0.1:9/d", "--out", str(tmp_path / "runs")], capsys)
    assert code == 2 and "the external backend offers no" in _one_line(err)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["run", "smoke", "--users", "many"], "argument --users: invalid int value: 'many'"),
        (["run"], "give one scenario name"),
        (["up", "--tenants", "0"], "argument --tenants: must be at least 1, got 0"),
        (["up", "--duration", "-1"], "argument --duration: must be above 0 seconds"),
        (["up", "--weaken", "sesion-lock"], "unknown weakening(s) sesion-lock"),
        (["report"], "the following arguments are required: DIR"),
        (["nonsense"], "invalid choice: 'nonsense'"),
    ],
)
def test_usage_errors_are_one_line(argv: list[str], expected: str, no_stack: None,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # argparse's own exit, as the console script sees it
        code = exc.code  # type: ignore[assignment]
    assert code == 2
    line = _one_line(capsys.readouterr().err)
    assert expected in line and "details:" not in line, line


def test_report_of_a_missing_directory_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _run(["report", str(tmp_path / "nowhere")], capsys)
    assert code == 2 and "no result.json" in _one_line(err)


def test_an_unexpected_failure_is_one_line_naming_the_traceback_file(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import stormproof.harness.stack as stack

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the disk caught fire")

    monkeypatch.setattr(stack, "EphemeralPostgres", boom)
    code = cli.main(["doctor"])
    err = capsys.readouterr().err
    assert code == 2
    line = _one_line(err)
    assert "RuntimeError: the disk caught fire" in line and "please report it" in line
    log = Path(line.rsplit(" ", 1)[1].rstrip(")"))
    assert "Traceback" in log.read_text() and "the disk caught fire" in log.read_text()
    log.unlink()


def test_the_replay_line_never_says_none() -> None:
    assert "None" not in " ".join(RunOptions(users=3).replay_args())
    assert RunOptions(app_url="http://a", database_url="postgresql://d").replay_args() == [
        "--app-url", "http://a", "--database-url", "postgresql://d"]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_app_url_on_a_closed_port_is_one_line_and_a_run_marked_not_run(tmp_path: Path) -> None:
    """In a real process, so that nothing (logging's last resort included) can print a traceback."""
    out = tmp_path / "runs"
    url = f"http://127.0.0.1:{_closed_port()}"
    done = subprocess.run([STORMPROOF, "run", "tenant-probe", "--app-url", url, "--database-url",
                           "postgresql://u@127.0.0.1:9/d", "--out", str(out), "--quiet"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip() and not line.startswith("== ")]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith(f"stormproof: error: tenant-probe did not run: the app at {url} does not answer")
    assert "is it running?" in lines[0] and "stormproof.log" in lines[0]
    assert "--database-url None" not in done.stderr + done.stdout
    (run_dir,) = [p for p in out.iterdir() if p.name != "latest"]  # latest/<scenario>: a link to it
    from stormproof.harness.report import load_result

    result = load_result(run_dir)
    assert result.verdict == "error" and result.not_run and "does not answer" in result.not_run
    assert result.plan is not None and result.plan["backend"] == "external"
    assert "Traceback" in (run_dir / "stormproof.log").read_text()
    index = tmp_path / "index.html"
    assert cli.main(["report", "--index", str(index), str(out)]) == 0
    assert "not run" in index.read_text(encoding="utf-8")
    assert "Not run" in (run_dir / "report.html").read_text(encoding="utf-8")


def test_a_missing_file_in_a_real_process_is_one_line(tmp_path: Path) -> None:
    done = subprocess.run([STORMPROOF, "run", "./nope.toml", "--out", str(tmp_path / "runs")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr == "stormproof: error: nope.toml: file not found\n"
    assert not (tmp_path / "runs").exists()
