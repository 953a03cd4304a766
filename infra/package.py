"""Build steps of `make package` around `chalice package` (see infra/DEPLOY.md).

    python infra/package.py automations SOURCE [--examples DIR] --into DIR
        validate the definitions that ship and copy them into the Lambda package
    python infra/package.py template SAM_YAML SAM_JSON
        finish Chalice's template: JSON, and the token routes on their own function
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

from chalicelib.actions.registry import default_registry
from chalicelib.domain.definitions import load_catalog
from chalicelib.domain.errors import DefinitionError
from chalicelib.domain.loader import definition_files

# API routes under this prefix are served by the TokenAdmin function (same code, own role):
# the API's role may read tokens but never write them.
TOKEN_ROUTES = "/api/tokens"
TOKEN_FUNCTION = "TokenAdmin"


def bundle_automations(sources: list[Path], into: Path) -> list[str]:
    """Copy the definition files of `sources` into `into` and validate them there with the
    loader the functions use; returns the automation names. DefinitionError, with one line per
    problem, leaves `into` empty."""
    files = [file for source in sources for file in definition_files(source)]
    names = [file.name for file in files]
    clashes = sorted({name for name in names if names.count(name) > 1})
    if clashes:
        raise DefinitionError([f"{name}: more than one file has this name: rename one"
                               for name in clashes])
    shutil.rmtree(into, ignore_errors=True)
    into.mkdir(parents=True)
    for file in files:
        shutil.copyfile(file, into / file.name)
    try:
        catalog = load_catalog(into, default_registry())
    except DefinitionError:
        shutil.rmtree(into)
        into.mkdir()
        raise
    return [automation.name for automation in catalog.all()]


def route_token_paths(template: dict[str, Any]) -> list[str]:
    """Point every API route under TOKEN_ROUTES at the TokenAdmin function; returns them."""
    paths = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]["paths"]
    uri = {"Fn::Sub": "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path"
                      f"/2015-03-31/functions/${{{TOKEN_FUNCTION}.Arn}}/invocations"}
    routed = []
    for path, methods in paths.items():
        if path != TOKEN_ROUTES and not path.startswith(TOKEN_ROUTES + "/"):
            continue
        for method, operation in methods.items():
            integration = operation.get("x-amazon-apigateway-integration")
            if integration and integration.get("type") == "aws_proxy":
                integration["uri"] = uri
                routed.append(f"{method.upper()} {path}")
    return routed


def finish_template(sam_yaml: Path, sam_json: Path) -> list[str]:
    """Chalice's YAML template as the JSON artifact we lint and deploy."""
    template = yaml.safe_load(sam_yaml.read_text(encoding="utf-8"))
    routed = route_token_paths(template)
    sam_json.write_text(json.dumps(template, indent=2), encoding="utf-8")
    return routed


def main(argv: list[str] | None = None) -> int:
    """Run one build step; 1 with the problems on stderr when definitions are invalid."""
    parser = argparse.ArgumentParser(prog="infra/package.py")
    steps = parser.add_subparsers(dest="step", required=True)
    automations = steps.add_parser("automations")
    automations.add_argument("source", type=Path)
    automations.add_argument("--examples", type=Path)
    automations.add_argument("--into", type=Path, required=True)
    template = steps.add_parser("template")
    template.add_argument("sam_yaml", type=Path)
    template.add_argument("sam_json", type=Path)
    args = parser.parse_args(argv)
    if args.step == "template":
        for route in finish_template(args.sam_yaml, args.sam_json):
            print(f"{route} → {TOKEN_FUNCTION}")
        return 0
    sources = [args.source] + ([args.examples] if args.examples else [])
    try:
        names = bundle_automations(sources, args.into)
    except DefinitionError as exc:
        print(f"invalid automation definitions in {', '.join(map(str, sources))}:",
              file=sys.stderr)
        print("\n".join(exc.problems), file=sys.stderr)
        return 1
    shipped = ", ".join(names) if names else "none (add definitions to automations/)"
    print(f"automations packaged from {', '.join(map(str, sources))}: {shipped}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
