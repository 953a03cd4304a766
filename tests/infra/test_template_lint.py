"""The packaged template deploys as it is: cfn-lint and `sam validate --lint` find nothing, and
it declares the parameters and outputs the README's deploy walk-through uses."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .conftest import ROOT
from .helpers import of_type, ref

SAM = ROOT / ".venv-sam" / "bin" / "sam"


def test_cfn_lint_reports_no_findings(sam_path):
    result = subprocess.run(
        # The same console script as `make lint-template`, from this interpreter's environment.
        [str(Path(sys.executable).parent / "cfn-lint"), "--format", "parseable", str(sam_path)],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert result.stdout.strip() == "", result.stdout
    assert result.returncode == 0, result.stderr


def test_sam_validate_lint_passes_offline_without_credentials(sam_path, tmp_path):
    assert SAM.exists(), "the SAM CLI venv is missing: run `make sam` (make test does)"
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update(SAM_CLI_TELEMETRY="0", HOME=str(tmp_path), AWS_CONFIG_FILE=os.devnull,
               AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    result = subprocess.run(
        [str(SAM), "validate", "--lint", "--template-file", str(sam_path), "--region",
         "us-east-1"], env=env, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    assert "is a valid SAM Template" in result.stdout


def test_every_chalice_function_is_packaged(resources):
    functions = of_type(resources, "AWS::Serverless::Function")
    handlers = sorted(p["Handler"] for p in functions.values())
    assert handlers == sorted([
        "app.app",  # APIHandler
        "app.app",  # TokenAdmin: the same app, for the token routes
        "chalicelib.api.common.bearer",
        "chalicelib.handlers.entrypoints.execute_steps",
        "chalicelib.handlers.entrypoints.consume_step_dlq",
        "chalicelib.handlers.entrypoints.tick",
        "chalicelib.handlers.entrypoints.count_runs",
    ])


def test_parameters_and_outputs_are_declared(sam):
    parameters = sam["Parameters"]
    assert parameters["Stage"]["Default"] == "dev"
    assert parameters["AlertEmail"]["Default"] == ""
    assert parameters["RunRetentionDays"]["Default"] == 30
    assert parameters["SecretsBackend"]["AllowedValues"] == ["ssm", "secretsmanager"]
    assert parameters["Tracing"]["Default"] == "Disabled"
    for name in ("ActionSnsTopicArns", "ActionSqsQueueArns", "ActionEventBusArns",
                 "ActionDynamoDbTableArns", "ActionSesIdentityArns"):
        assert parameters[name]["Type"] == "CommaDelimitedList"
    outputs = sam["Outputs"]
    assert outputs["ApiUrl"]["Value"] == {
        "Fn::Sub": "https://${RestAPI}.execute-api.${AWS::Region}.${AWS::URLSuffix}/v1"}
    assert outputs["AdminTokenParameter"]["Value"] == {"Fn::Sub": "/${AWS::StackName}/admin-token"}
    assert outputs["Stage"]["Value"] == ref("Stage")
    assert {"RunsTableName", "SecretsPath", "StepQueueUrl", "StepDeadLetterQueueUrl",
            "ExhaustedRunsQueueUrl", "PayloadBucketName", "AlertTopicArn"} <= set(outputs)
