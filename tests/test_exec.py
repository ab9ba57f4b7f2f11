"""``fermilink-state exec``: the adapter in every Python process a command starts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from campaign_builder import run_cli
from fermilink_state.cli._exec import ADOPT_ENV, SITE_DIR, adopting_environment

pytestmark = pytest.mark.timeout(120)

ALIASED = (
    "import sys, fermilink, fermilink_state; "
    "print(sys.modules.get('fermilink.optimize.state') is fermilink_state)"
)


def fermilink_state_exec(
    *command: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``fermilink-state exec -- <command>``, run as a user would."""
    return run_cli("exec", "--", *command, env=env)


def test_a_python_child_and_its_children_run_with_the_adapter() -> None:
    child = (
        f"import subprocess, sys; {ALIASED}; subprocess.run([sys.executable, '-c', {ALIASED!r}])"
    )
    done = fermilink_state_exec(sys.executable, "-c", child)
    assert (done.returncode, done.stdout.split()) == (0, ["True", "True"]), done.stderr


def test_without_exec_the_same_child_has_no_adapter() -> None:
    done = subprocess.run(
        [sys.executable, "-c", ALIASED], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split() == ["False"]


@pytest.mark.parametrize("code", [0, 1, 7, 255])
def test_the_commands_exit_code_is_passed_through(code: int) -> None:
    done = fermilink_state_exec(sys.executable, "-c", f"raise SystemExit({code})")
    assert done.returncode == code


def test_a_command_killed_by_a_signal_is_reported_as_that_signal() -> None:
    done = fermilink_state_exec("sh", "-c", "kill -TERM $$")
    assert done.returncode == -signal.SIGTERM


def test_an_existing_sitecustomize_still_runs(tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text("import os\nos.environ['SHADOWED_RAN'] = 'yes'\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    code = f"import os; {ALIASED}; print(os.environ.get('SHADOWED_RAN'))"
    done = fermilink_state_exec(sys.executable, "-c", code, env=env)
    assert done.stdout.split() == ["True", "yes"], done.stderr


def test_a_missing_command_is_one_error_line_and_127() -> None:
    done = fermilink_state_exec("no-such-command-fermilink-state")
    assert done.returncode == 127
    assert done.stderr == (
        "fermilink-state: error: no-such-command-fermilink-state: command not found "
        "(is it on PATH?)\n"
    )


def test_no_command_is_a_usage_error() -> None:
    done = fermilink_state_exec()
    assert done.returncode == 2
    assert done.stderr.startswith("fermilink-state: error: exec needs a command after `--`")


def test_the_environment_puts_the_adapter_first_once() -> None:
    base = {"PYTHONPATH": os.pathsep.join(["/a", str(SITE_DIR), "/b"]), "KEEP": "1"}
    adopted = adopting_environment(base)
    assert adopted["PYTHONPATH"] == os.pathsep.join([str(SITE_DIR), "/a", "/b"])
    assert adopted[ADOPT_ENV] == "1"
    assert adopted["KEEP"] == "1"
    assert adopting_environment({})["PYTHONPATH"] == str(SITE_DIR)
    assert (SITE_DIR / "sitecustomize.py").is_file()


def test_a_process_that_never_imports_fermilink_never_imports_fermilink_state() -> None:
    code = "import sys; print('fermilink_state' in sys.modules)"
    done = fermilink_state_exec(sys.executable, "-c", code)
    assert done.stdout.split() == ["False"], done.stderr


def test_the_switch_off_leaves_a_process_unadopted() -> None:
    env = dict(adopting_environment(os.environ), **{ADOPT_ENV: "0"})
    done = subprocess.run(
        [sys.executable, "-c", ALIASED],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.stdout.split() == ["False"]
