"""Offline commands through the real CLI: --version, --help, init, validate, and run without a key."""

from __future__ import annotations

import re

import pytest

from ootgen import __version__
from tests.conftest import REPO, run_cli
from tests.test_load import builtin_stub_dir, cli_env, ready_project, type_names


def test_version():
    result = run_cli("--version", env=cli_env())
    assert result.returncode == 0
    assert result.stdout.strip() == f"ootgen, version {__version__}"


def test_help_lists_commands():
    result = run_cli("--help", env=cli_env())
    assert result.returncode == 0
    for command in ("validate", "types", "render", "init", "run", "status", "export", "check", "index"):
        assert re.search(rf"^\s+{command}\s", result.stdout, re.M), command


def test_init_copies_then_refuses_then_forces(tmp_path):
    target = tmp_path / "mine"
    first = run_cli("init", str(target), cwd=tmp_path, env=cli_env())
    assert first.returncode == 0, first.stderr
    for kind in ("configs", "templates", "contexts", "schemas"):
        assert (target / kind).is_dir()
    assert (target / "configs" / "default.yaml").read_text() == (REPO / "configs" / "default.yaml").read_text()
    assert (target / "templates" / "generate.md.j2").is_file()
    assert "copied" in first.stdout

    edited = target / "configs" / "default.yaml"
    edited.write_text(edited.read_text() + "# my edit\n")
    again = run_cli("init", str(target), cwd=tmp_path, env=cli_env())
    assert again.returncode == 2
    assert again.stderr.strip().count("\n") == 0 and "Traceback" not in again.stderr
    assert "--force" in again.stderr and str(target) in again.stderr
    assert edited.read_text().endswith("# my edit\n")  # nothing overwritten

    forced = run_cli("init", str(target), "--force", cwd=tmp_path, env=cli_env())
    assert forced.returncode == 0, forced.stderr
    assert edited.read_text() == (REPO / "configs" / "default.yaml").read_text()


def test_init_result_validates(tmp_path):
    target = tmp_path / "mine"
    assert run_cli("init", str(target), env=cli_env()).returncode == 0
    cfg = ready_project(target)
    result = run_cli("validate", str(cfg), cwd=tmp_path, env=cli_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"OK  {cfg}")


def test_validate_builtin_name_from_unrelated_cwd(tmp_path):
    stubs = builtin_stub_dir(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run_cli("validate", "default", "--set", f"extra_types_dirs=[{stubs}]", cwd=elsewhere, env=cli_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"OK  {REPO / 'configs' / 'default.yaml'}")
    assert "work hash" in result.stdout
    if not any(stubs.iterdir()):  # the repository defines every type itself: no override needed at all
        plain = run_cli("validate", "default", cwd=elsewhere, env=cli_env())
        assert plain.returncode == 0, plain.stderr


def test_validate_names_missing_builtin_or_file(tmp_path):
    result = run_cli("validate", "no-such-preset", cwd=tmp_path, env=cli_env())
    assert result.returncode == 2
    assert "no-such-preset" in result.stderr and "default" in result.stderr
    assert result.stderr.strip().count("\n") == 0


def test_run_without_key_tells_how_to_give_one(project_dir, fake_anthropic):
    ready_project(project_dir)
    result = run_cli("run", "configs/default.yaml", cwd=project_dir, env=cli_env(ANTHROPIC_BASE_URL=fake_anthropic.base_url))
    assert result.returncode != 0
    assert "--api-key" in result.stderr and "ANTHROPIC_API_KEY" in result.stderr
    assert "Traceback" not in result.stderr
    assert fake_anthropic.log == []
    assert not (project_dir / "oot_training_data.jsonl").exists()


def test_dry_run_without_key_estimates(project_dir, fake_anthropic):
    ready_project(project_dir)
    result = run_cli("run", "configs/default.yaml", "--dry-run", "--num-examples", "20", cwd=project_dir,
                     env=cli_env(ANTHROPIC_BASE_URL=fake_anthropic.base_url))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "dry run: 20 accepted examples wanted" in out
    assert "gen calls" in out and "judge calls" in out
    assert "input tok" in out and "output tok" in out and "cost USD" in out
    assert re.search(r"\d+\.\d+", out)  # a dollar figure
    assert fake_anthropic.log == []
    assert not (project_dir / "oot_training_data.jsonl").exists()


def test_types_lists_every_type(project_dir):
    cfg = ready_project(project_dir)
    result = run_cli("types", str(cfg), cwd=project_dir, env=cli_env())
    assert result.returncode == 0, result.stderr
    listed = {line.split()[0] for line in result.stdout.splitlines()[1:]}
    assert listed == type_names(project_dir / "configs" / "types")


@pytest.mark.parametrize("command", ["validate", "types", "render"])
def test_offline_commands_never_need_a_key(project_dir, command, fake_anthropic):
    cfg = ready_project(project_dir)
    result = run_cli(command, str(cfg), cwd=project_dir, env=cli_env(ANTHROPIC_BASE_URL=fake_anthropic.base_url))
    assert result.returncode == 0, result.stderr
    assert fake_anthropic.log == []


def test_bad_flag_value_is_one_line_naming_the_flag_exit_2(tmp_path):
    result = run_cli("run", "default", "--num-examples", "0", cwd=tmp_path)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2
    assert len(lines) == 1 and "--num-examples" in lines[0] and "ootgen run --help" in lines[0]
    assert "Traceback" not in result.stderr


def test_unwritable_output_is_one_line_exit_2_before_any_request(tmp_path):
    result = run_cli("run", "default", "--api-key", "k", "--output", "/proc/ootgen-nope/x.jsonl", cwd=tmp_path)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and "cannot create the run directory" in lines[0]


def test_init_force_refuses_to_write_through_a_symlink(tmp_path):
    target = tmp_path / "mine"
    assert run_cli("init", str(target), env=cli_env()).returncode == 0
    outside = tmp_path / "outside.txt"
    outside.write_text("not yours\n")
    link = target / "configs" / "default.yaml"
    link.unlink()
    link.symlink_to(outside)
    linked_dir = tmp_path / "elsewhere"
    linked_dir.mkdir()
    (target / "templates").rename(tmp_path / "templates_moved")
    (target / "templates").symlink_to(linked_dir, target_is_directory=True)

    forced = run_cli("init", str(target), "--force", cwd=tmp_path, env=cli_env())
    assert forced.returncode == 2
    assert "symbolic link" in forced.stderr and "Traceback" not in forced.stderr
    assert outside.read_text() == "not yours\n"
    assert list(linked_dir.iterdir()) == []
