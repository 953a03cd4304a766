"""The packaged template deploys as it is: cfn-lint finds nothing, and names agree with config."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .helpers import of_type, props


def test_cfn_lint_reports_no_findings(sam_path):
    result = subprocess.run(
        # The same console script as `make lint-template`, from this interpreter's environment.
        [str(Path(sys.executable).parent / "cfn-lint"), "--format", "parseable", str(sam_path)],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert result.stdout.strip() == "", result.stdout
    assert result.returncode == 0, result.stderr


def test_every_chalice_function_is_packaged(resources):
    functions = of_type(resources, "AWS::Serverless::Function")
    handlers = {p["Handler"] for p in functions.values()}
    assert {
        "chalicelib.handlers.entrypoints.execute_steps",
        "chalicelib.handlers.entrypoints.consume_step_dlq",
        "chalicelib.handlers.entrypoints.tick",
        "chalicelib.handlers.entrypoints.count_runs",
        "app.app",
    } <= handlers


def test_config_names_match_the_template_resources(resources, chalice_config):
    env = chalice_config["environment_variables"]
    assert props(resources, "RunsTable")["TableName"] == env["RUNS_TABLE"]
    assert props(resources, "StepQueue")["QueueName"] == env["STEP_QUEUE"]
    assert props(resources, "StepDeadLetterQueue")["QueueName"] == env["STEP_DLQ"]
    assert props(resources, "ExhaustedRunsQueue")["QueueName"] == env["EXHAUSTED_QUEUE"]


def test_parameters_and_outputs_are_declared(sam):
    assert sam["Parameters"]["AlertEmail"]["Default"] == ""
    assert sam["Parameters"]["RunRetentionDays"]["Default"] == 30
    for name in ("ActionSnsTopicArns", "ActionSqsQueueArns", "ActionEventBusArns",
                 "ActionDynamoDbTableArns", "ActionSesIdentityArns"):
        assert sam["Parameters"][name]["Type"] == "CommaDelimitedList"
    assert {"RunsTableName", "StepQueueUrl", "StepDeadLetterQueueUrl", "ExhaustedRunsQueueUrl",
            "PayloadBucketName", "AlertTopicArn"} <= set(sam["Outputs"])
