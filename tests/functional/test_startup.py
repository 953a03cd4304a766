"""Cold start refuses invalid definitions with one message per problem."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BAD = ROOT / "tests" / "fixtures" / "definitions" / "bad"


def _import_app(automations_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "AUTOMATIONS_DIR": str(automations_dir), "AWS_DEFAULT_REGION": "us-east-1"}
    return subprocess.run([sys.executable, "-c", "import app"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_a_bad_definition_stops_the_cold_start_naming_file_automation_and_field():
    result = _import_app(BAD)
    assert result.returncode != 0
    assert "DefinitionError" in result.stderr
    assert "broken.yaml: automation 'bad-props': actions[0].props.url" in result.stderr


def test_the_examples_load(tmp_path):
    result = _import_app(ROOT / "examples")
    assert result.returncode == 0, result.stderr
