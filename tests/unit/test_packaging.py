"""The Lambda's requirements.txt and pyproject's runtime pins say the same thing."""
from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _pins(lines) -> set[str]:
    return {line.split("#")[0].strip().lower() for line in lines
            if line.split("#")[0].strip()}


def test_requirements_match_the_runtime_dependencies():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = (ROOT / "requirements.txt").read_text().splitlines()
    assert _pins(requirements) == _pins(project["dependencies"])


def test_dev_tools_stay_out_of_the_lambda_package():
    pins = " ".join(_pins((ROOT / "requirements.txt").read_text().splitlines()))
    for tool in ("chalice", "moto", "pytest", "cfn-lint"):
        assert tool not in pins
