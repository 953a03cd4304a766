"""The packaged SAM template, built once per session with the same `make package` as a deploy."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIR = ROOT / "build" / "package"
SAM_JSON = PACKAGE_DIR / "sam.json"
CHALICE_DIR = ROOT / ".chalice"


def make_env(**overrides: str) -> dict[str, str]:
    """The environment of a `make` run as a user's shell has it: no test-suite settings that
    `make package` reads (the suite sets AUTOMATIONS_DIR for the app)."""
    env = {k: v for k, v in os.environ.items() if k not in ("AUTOMATIONS_DIR", "EXAMPLES")}
    return {**env, **overrides}


@pytest.fixture(scope="session")
def sam_path() -> Path:
    """Path of build/package/sam.json, freshly produced by `make package`."""
    if shutil.which("make") is None:
        pytest.fail("`make` is needed to package the template (apt-get install make)")
    result = subprocess.run(
        ["make", "--no-print-directory", "package"],
        cwd=ROOT, env=make_env(), capture_output=True, text=True, timeout=900, check=False,
    )
    assert result.returncode == 0, f"make package failed:\n{result.stdout}\n{result.stderr}"
    return SAM_JSON


@pytest.fixture(scope="session")
def sam(sam_path: Path) -> dict[str, Any]:
    """The packaged template as data."""
    return json.loads(sam_path.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def resources(sam: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return sam["Resources"]


@pytest.fixture(scope="session")
def chalice_config() -> dict[str, Any]:
    return json.loads((CHALICE_DIR / "config.json").read_text(encoding="utf-8"))
