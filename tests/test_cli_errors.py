"""A user error of any command ends in one line naming the file, flag or key, exit status 2, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from resdex_sb3.errors import UserError, cli_main
from resdex_sb3.zoo_manager import DEFAULT_CONFIG

REPO = Path(__file__).resolve().parents[1]


def _cli(module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300)  # fmt: skip


def test_an_unknown_key_in_a_zoo_yaml_is_one_line_naming_file_and_key(tmp_path):
    config = yaml.safe_load(DEFAULT_CONFIG.read_text())
    config["ResDexBase-v0"]["smoke"]["learning_rat"] = 1e-3
    bad = tmp_path / "ppo.yml"
    bad.write_text(yaml.safe_dump(config))
    done = _cli("resdex_sb3.train", "--algo", "ppo", "--env", "ResDexBase", "--preset", "smoke", "-conf", str(bad),
                "--run-dir", str(tmp_path / "run"), "-n", "128")  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-3000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0] and "'learning_rat'" in lines[0], done.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("module, flag", [("resdex_sb3.evaluate", "--max-envs"), ("resdex_sb3.demo", "--trials"),
                                          ("resdex_sb3.demo", "--base-steps")])  # fmt: skip
def test_a_non_positive_count_is_refused_by_the_parser(module, flag):
    done = _cli(module, *(("--model", "nowhere") if module.endswith("evaluate") else ()), flag, "0")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]  # after argparse's usage line
    assert flag in last and "at least 1" in last


def test_cli_main_turns_user_errors_into_one_line_and_keeps_bugs(capsys, monkeypatch):
    monkeypatch.delenv("RESDEX_TRACEBACK", raising=False)

    @cli_main
    def failing(error: Exception) -> int:
        raise error

    for error, message in ((UserError("ppo.yml: bad key"), "ppo.yml: bad key"),
                           (FileNotFoundError("run x does not exist"), "run x does not exist"),
                           (KeyError("object 'mug' is not in set 'embedded'"), "object 'mug' is not in set 'embedded'"),
                           (ValueError("two\nlines"), "two; lines")):  # fmt: skip
        assert failing(error) == 2
        assert capsys.readouterr().err == f"error: {message}\n"
    with pytest.raises(RuntimeError):  # a bug keeps its traceback
        failing(RuntimeError("bug"))
