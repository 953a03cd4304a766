"""Evaluate the packaged template's IAM roles as AWS would, for the requests the code makes.

`StackResolver` turns the template's intrinsics (Ref, Fn::GetAtt, Fn::Sub, Fn::If, conditions)
into the values they take for one set of parameters and physical resources (moto's);
`decision` applies IAM's rules (explicit Deny wins, then any Allow, else implicit deny) for the
statement features the template uses.
"""
from __future__ import annotations

import fnmatch
import re
from typing import Any

from .iam_calls import ACCOUNT, REGION, Request

NO_VALUE = object()


class StackResolver:
    """The template's values for `parameters` (others: defaults) and `physical` resources:
    logical id → {"Ref": ..., "Arn": ..., other attributes}."""

    def __init__(self, template: dict[str, Any], physical: dict[str, dict[str, str]],
                 parameters: dict[str, Any] | None = None, stack: str = "test-stack") -> None:
        self.template = template
        self.physical = physical
        self.parameters = {name: spec.get("Default")
                           for name, spec in template.get("Parameters", {}).items()}
        self.parameters.update(parameters or {})
        self.pseudo = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws",
                       "AWS::StackName": stack, "AWS::URLSuffix": "amazonaws.com",
                       "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/"
                                       f"{stack}/0c2b3c40-0000-4000-8000-000000000000"}

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        return self.physical[name]["Ref"]

    def condition(self, name: str) -> bool:
        return bool(self.value(self.template["Conditions"][name]))

    def _sub(self, text: str, variables: dict[str, Any]) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(self.value(variables[name]))
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                return self.physical[logical_id][attribute]
            return str(self.ref(name))

        return re.sub(r"\$\{([^}!]+)\}", replace, text)

    def value(self, node: Any) -> Any:
        """`node` with every intrinsic function evaluated (AWS::NoValue dropped from lists)."""
        if isinstance(node, list):
            return [item for item in (self.value(n) for n in node) if item is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                return self.physical[arg[0]][arg[1]]
            if key == "Fn::Sub":
                text, variables = (arg, {}) if isinstance(arg, str) else arg
                return self._sub(text, variables)
            if key == "Fn::If":
                return self.value(arg[1] if self.condition(arg[0]) else arg[2])
            if key == "Fn::Equals":
                return self.value(arg[0]) == self.value(arg[1])
            if key == "Fn::Not":
                return not self.value(arg[0])
            if key == "Fn::Join":
                items = self.value(arg[1])
                return arg[0].join(items if isinstance(items, list) else [items])
            if key == "Condition":
                return self.condition(arg)
            if key.startswith("Fn::"):
                raise AssertionError(f"unsupported intrinsic {key}")
        return {key: self.value(item) for key, item in node.items()}

    def environment(self, function: str) -> dict[str, str]:
        """The environment variables of a function: the Globals, then its own."""
        variables = dict(self.template.get("Globals", {}).get("Function", {})
                         .get("Environment", {}).get("Variables", {}))
        variables.update(self.template["Resources"][function]["Properties"]
                         .get("Environment", {}).get("Variables", {}))
        return {name: str(self.value(value)) for name, value in variables.items()}

    def role_statements(self, role: str) -> list[dict[str, Any]]:
        """The inline policy statements of a role, resolved."""
        properties = self.template["Resources"][role]["Properties"]
        return [statement for policy in properties.get("Policies", [])
                for statement in self.value(policy["PolicyDocument"]["Statement"])]


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _matches(patterns: Any, value: str) -> bool:
    return any(fnmatch.fnmatchcase(value, pattern) for pattern in _listed(patterns))


def _condition_holds(condition: dict[str, Any], context: dict[str, list[str]]) -> bool:
    for operator, tests in condition.items():
        qualifier, _, base = operator.rpartition(":")
        if base not in {"StringEquals", "StringLike"}:
            raise AssertionError(f"unsupported condition operator {operator}")
        compare = (lambda pattern, v: pattern == v) if base == "StringEquals" else \
            (lambda pattern, v: fnmatch.fnmatchcase(v, pattern))
        for key, wanted in tests.items():
            values = context.get(key)
            if values is None and qualifier != "ForAllValues":
                return False  # an absent key matches no value (ForAllValues: vacuously true)
            hits = [any(compare(p, v) for p in _listed(wanted)) for v in values or []]
            if qualifier == "ForAllValues":
                holds = all(hits)
            elif qualifier == "ForAnyValue":
                holds = any(hits)
            else:
                holds = len(hits) == 1 and hits[0]
            if not holds:
                return False
    return True


def _applies(statement: dict[str, Any], request: Request) -> bool:
    return (_matches(statement["Action"], request.action)
            and _matches(statement["Resource"], request.resource)
            and _condition_holds(statement.get("Condition", {}), request.context))


def decision(statements: list[dict[str, Any]], request: Request) -> str:
    """"Deny" (explicit), "Allow", or "ImplicitDeny" for `request` under `statements`."""
    effects = {s["Effect"] for s in statements if _applies(s, request)}
    return "Deny" if "Deny" in effects else "Allow" if "Allow" in effects else "ImplicitDeny"


def granted_actions(statements: list[dict[str, Any]]) -> set[str]:
    """Every action some Allow statement grants."""
    return {action for s in statements if s["Effect"] == "Allow" for action in _listed(s["Action"])}
