"""Templates (SPEC 2.2) and masking (SPEC 7)."""
from __future__ import annotations

import pytest

from chalicelib.domain.errors import TemplateError
from chalicelib.domain.templates import (
    REDACTED, Secrets, build_context, data_view, mask, mask_headers, render,
)

SECRETS = {"API_TOKEN": "s3cr3t-token-value", "PIN": "1234"}


def context(**overrides):
    values = dict(
        trigger_data={"userId": 42, "tags": ["a", "b"], "user": {"name": "Ada"}, "none": None},
        steps={"fetch": {"status": 200, "body": {"items": [{"id": "x1"}, {"id": "x2"}]}}},
        run_id="run-1", attempt=2, automation_name="welcome",
        secrets=Secrets(SECRETS.get),
    )
    values.update(overrides)
    return build_context(**values)


def test_whole_expression_keeps_the_value_type():
    ctx = context()
    assert render("{{trigger.data.userId}}", ctx) == 42
    assert render("{{ trigger.data.user }}", ctx) == {"name": "Ada"}
    assert render("{{trigger.data.tags}}", ctx) == ["a", "b"]
    assert render("{{trigger.data.none}}", ctx) is None


def test_expressions_inside_text_are_interpolated_with_json_for_structures():
    ctx = context()
    assert render("user {{trigger.data.userId}}!", ctx) == "user 42!"
    assert render("tags={{trigger.data.tags}}", ctx) == 'tags=["a","b"]'
    assert render("{{run.automationName}}#{{run.attempt}}", ctx) == "welcome#2"


def test_render_walks_nested_props_and_indexes_lists():
    props = {"url": "https://x/{{steps.fetch.body.items[1].id}}",
             "body": {"ids": ["{{steps.fetch.body.items[0].id}}", 3], "ok": True},
             "status": "{{steps.fetch.status}}"}
    assert render(props, context()) == {
        "url": "https://x/x2", "body": {"ids": ["x1", 3], "ok": True}, "status": 200,
    }


def test_render_does_not_mutate_or_alias_the_context():
    ctx = context()
    user = render("{{trigger.data.user}}", ctx)
    user["name"] = "changed"
    assert ctx["trigger"]["data"]["user"] == {"name": "Ada"}


@pytest.mark.parametrize("template, missing", [
    ("{{trigger.data.nope}}", "trigger.data.nope"),
    ("id: {{steps.fetch.body.items[5].id}}", "steps.fetch.body.items[5]"),
    ("{{steps.unknown}}", "steps.unknown"),
    ("{{trigger.data.userId.deeper}}", "trigger.data.userId.deeper"),
])
def test_missing_path_is_an_error_naming_the_path(template, missing):
    with pytest.raises(TemplateError) as raised:
        render(template, context())
    assert missing in raised.value.message


def test_unknown_root_and_malformed_paths_are_errors():
    for template in ("{{env.HOME}}", "{{}}", "{{trigger..data}}"):
        with pytest.raises(TemplateError):
            render(template, context())


def test_payload_text_is_data_and_never_evaluated_again():
    ctx = context(trigger_data={"comment": "{{secrets.API_TOKEN}}", "n": "{{run.id}}"})
    assert render("{{trigger.data.comment}}", ctx) == "{{secrets.API_TOKEN}}"
    assert render("say {{trigger.data.n}}", ctx) == "say {{run.id}}"


def test_secrets_resolve_through_the_lookup_and_are_remembered_for_masking():
    secrets = Secrets(SECRETS.get)
    ctx = context(secrets=secrets)
    assert render("Bearer {{secrets.API_TOKEN}}", ctx) == "Bearer s3cr3t-token-value"
    assert secrets.values == ("s3cr3t-token-value",)
    assert "secrets" not in data_view(ctx)


def test_missing_secret_is_a_template_error():
    with pytest.raises(TemplateError, match="NOPE"):
        render("{{secrets.NOPE}}", context())


def test_mask_redacts_secret_values_and_sensitive_headers():
    value = {"headers": {"Authorization": "Bearer x", "X-Hub-Signature-256": "sha256=1",
                         "cookie": "a=b", "Content-Type": "text/plain"},
             "body": ["token s3cr3t-token-value here", 5], "pin": "1234"}
    masked = mask(value, secrets=SECRETS.values())
    assert masked == {
        "headers": {"Authorization": REDACTED, "X-Hub-Signature-256": REDACTED,
                    "cookie": REDACTED, "Content-Type": "text/plain"},
        "body": [f"token {REDACTED} here", 5],
        "pin": "1234",  # shorter than 6 characters: not masked
    }
    assert value["headers"]["Authorization"] == "Bearer x"


def test_mask_headers_is_case_insensitive():
    assert mask_headers({"X-API-KEY": "k", "Accept": "*/*"}) == {"X-API-KEY": REDACTED,
                                                               "Accept": "*/*"}
