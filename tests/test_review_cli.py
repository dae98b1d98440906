"""The new commands stay cheap to reach: `ootgen --help` imports no web, dataset or API library; bad input is one line."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import clean_env, run_cli

HEAVY = ("anthropic", "flask", "werkzeug", "datasets", "huggingface_hub", "pyarrow", "markdown_it", "pygments")


def test_help_imports_no_heavy_library():
    code = ("import sys; sys.argv = ['ootgen', '--help']\nfrom ootgen.cli import main\ntry:\n    main()\n"
            "except SystemExit:\n    pass\nprint('LOADED', sorted({m.split('.')[0] for m in sys.modules}))")
    result = subprocess.run([sys.executable, "-c", code], env=clean_env(), capture_output=True, text=True, timeout=120)
    loaded = result.stdout.rsplit("LOADED", 1)[1]
    assert "review" in result.stdout and "export" in result.stdout
    assert [name for name in HEAVY if f"'{name}'" in loaded] == []


def test_review_of_a_folder_without_a_run_is_one_line_exit_2(tmp_path):
    result = run_cli("review", str(tmp_path), "--no-browser")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0 and "no run database" in result.stderr
