"""`make package` ships the definitions of AUTOMATIONS_DIR (the examples only when asked),
validated by the loader the functions use."""
from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

import pytest
import yaml

from chalicelib.domain.errors import DefinitionError
from chalicelib.settings import EXAMPLE_AUTOMATIONS, USER_AUTOMATIONS
from infra.package import bundle_automations

from .conftest import PACKAGE_DIR, ROOT, make_env

PACKAGED = "chalicelib/packaged_automations/"
BAD = ROOT / "tests" / "fixtures" / "definitions" / "bad"
GOOD = ROOT / "tests" / "fixtures" / "definitions" / "good"


def _shipped(zip_path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(zip_path) as package:
        return {name.removeprefix(PACKAGED): package.read(name)
                for name in package.namelist() if name.startswith(PACKAGED) and name != PACKAGED}


def test_the_package_ships_your_automations_and_not_the_examples(sam_path):
    shipped = _shipped(PACKAGE_DIR / "deployment.zip")
    yours = {p.name: p.read_bytes() for p in Path(USER_AUTOMATIONS).glob("*.y*ml")}
    assert shipped == yours
    names = {a["name"] for text in shipped.values()
             for a in yaml.safe_load(text)["automations"]}
    assert "heartbeat" not in names  # the every-minute example never ships by default


def test_examples_ship_only_when_asked(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "team.yaml").write_text((GOOD / "every_feature.yaml").read_text())
    into = tmp_path / "package"
    alone = bundle_automations([mine], into)
    assert sorted(p.name for p in into.iterdir()) == ["team.yaml"]
    with_examples = bundle_automations([mine, Path(EXAMPLE_AUTOMATIONS)], into)
    assert sorted(p.name for p in into.iterdir()) == ["examples.yaml", "team.yaml"]
    assert set(with_examples) - set(alone) >= {"heartbeat", "hello-manual"}


def test_an_invalid_definition_is_refused_and_nothing_is_left_to_ship(tmp_path):
    into = tmp_path / "package"
    with pytest.raises(DefinitionError) as raised:
        bundle_automations([BAD], into)
    assert "broken.yaml: automation 'bad-props': actions[0].props.url: Field required" in \
        raised.value.problems
    assert list(into.iterdir()) == []


def test_two_files_of_the_same_name_are_refused(tmp_path):
    twin = tmp_path / "twin"
    twin.mkdir()
    (twin / "examples.yaml").write_text("automations: []\n")
    with pytest.raises(DefinitionError) as raised:
        bundle_automations([twin, Path(EXAMPLE_AUTOMATIONS)], tmp_path / "package")
    assert raised.value.problems == [
        "examples.yaml: more than one file has this name: rename one"]


def test_make_package_stops_on_an_invalid_definition_with_one_line_per_problem():
    result = subprocess.run(
        ["make", "--no-print-directory", "package", f"AUTOMATIONS_DIR={BAD}"],
        cwd=ROOT, env=make_env(), capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode != 0
    lines = result.stderr.splitlines()
    assert "broken.yaml: automation 'bad-props': actions[0].props.url: Field required" in lines
    assert "chalice package" not in result.stdout  # stopped before packaging anything
