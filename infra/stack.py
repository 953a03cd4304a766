"""Steps of `make deploy` / `make destroy` around the SAM CLI (see the README, "Deploy").

    python infra/stack.py first-token STACK   once per stack: an admin token, kept in SSM
    python infra/stack.py show STACK          what to point the CLI at, what outlives the stack
    python infra/stack.py forget STACK        after the stack is deleted: drop its admin token

They use your AWS credentials and region (AWS_REGION / AWS_PROFILE), as the SAM CLI does.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from typing import Any

import boto3
from botocore.exceptions import ClientError

from chalicelib.bootstrap import Container
from chalicelib.domain.clock import utcnow
from chalicelib.services.tokens import create_token
from chalicelib.settings import Settings


def admin_token_parameter(stack: str) -> str:
    """Where the stack's first admin token is kept (the template's AdminTokenParameter)."""
    return f"/{stack}/admin-token"


def outputs(session: Any, stack: str) -> dict[str, str]:
    """The stack's outputs by key."""
    (found,) = session.client("cloudformation").describe_stacks(StackName=stack)["Stacks"]
    return {o["OutputKey"]: o["OutputValue"] for o in found.get("Outputs", [])}


def first_token(session: Any, stack: str) -> str:
    """Issue an admin token and store it as a SecureString, unless the stack has one already;
    returns what was done."""
    ssm = session.client("ssm")
    values = outputs(session, stack)
    name = values["AdminTokenParameter"]
    try:
        ssm.get_parameter(Name=name)
        return f"admin token already stored at {name} (kept)"
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ParameterNotFound":
            raise
    # The same service the `runs token create` command calls, on the stack's table.
    settings = replace(Settings.from_env({}), runs_table=values["RunsTableName"],
                       region=session.region_name)
    tokens = Container(settings=settings).tokens
    token_id, secret = create_token(tokens, "admin", utcnow(),
                                    description=f"first admin of {stack} (make deploy)")
    # Written only if absent: a concurrent deploy that stored one first wins, and this token,
    # whose secret no one ever sees, is useless.
    ssm.put_parameter(Name=name, Value=secret, Type="SecureString", Overwrite=False,
                      Description=f"Admin API token {token_id} of {stack}")
    return f"admin token {token_id} stored at {name}"


def _secret_command(path: str) -> str:
    """How to set {{secrets.NAME}} for the stack's secrets backend."""
    if path.startswith("/"):  # SSM parameter names are paths
        return f"aws ssm put-parameter --type SecureString --name {path}NAME --value ..."
    return f"aws secretsmanager create-secret --name {path}NAME --secret-string ..."


def show(session: Any, stack: str) -> str:
    """How to reach the stage, and what deleting the stack leaves behind."""
    values = outputs(session, stack)
    region = session.region_name
    return "\n".join([
        f"{stack} ({region})",
        f"  export RUNS_URL={values['ApiUrl']}",
        "  export RUNS_TOKEN=$(aws ssm get-parameter --with-decryption --name "
        f"{values['AdminTokenParameter']} --query Parameter.Value --output text)",
        f"  secrets   {_secret_command(values['SecretsPath'])}",
        f"  kept when the stack is deleted: table {values['RunsTableName']}, "
        f"bucket {values['PayloadBucketName']}, secrets under {values['SecretsPath']}",
    ])


def forget(session: Any, stack: str) -> str:
    """Delete the admin token parameter of a deleted stack (its API is gone)."""
    name = admin_token_parameter(stack)
    try:
        session.client("ssm").delete_parameter(Name=name)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ParameterNotFound":
            raise
        return f"no admin token at {name}"
    return f"deleted {name}"


def main(argv: list[str] | None = None) -> int:
    """Run one step for one stack."""
    parser = argparse.ArgumentParser(prog="infra/stack.py")
    parser.add_argument("step", choices=["first-token", "show", "forget"])
    parser.add_argument("stack")
    args = parser.parse_args(argv)
    step = {"first-token": first_token, "show": show, "forget": forget}[args.step]
    print(step(boto3.Session(), args.stack))
    return 0


if __name__ == "__main__":
    sys.exit(main())
