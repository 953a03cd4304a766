"""email/send: an email through SES (v1 SendEmail)."""
from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from .aws import aws_errors
from .base import ActionContext, Output, Props
from .registry import ActionSpec


class EmailProps(Props):
    from_: str = Field(alias="from")
    to: str | list[str]
    cc: list[str] = Field(default_factory=list)
    bcc: list[str] = Field(default_factory=list)
    reply_to: list[str] = Field(default_factory=list)
    subject: str
    text: str | None = None
    html: str | None = None

    @model_validator(mode="after")
    def _has_body(self) -> "EmailProps":
        if self.text is None and self.html is None:
            raise ValueError("give text or html (or both)")
        return self

    def recipients(self) -> list[str]:
        return [self.to] if isinstance(self.to, str) else list(self.to)


def send(props: EmailProps, ctx: ActionContext) -> dict[str, Any]:
    """Send one email; the output is SES's `{messageId}`."""
    body: dict[str, Any] = {}
    if props.text is not None:
        body["Text"] = {"Data": props.text, "Charset": "UTF-8"}
    if props.html is not None:
        body["Html"] = {"Data": props.html, "Charset": "UTF-8"}
    kwargs: dict[str, Any] = {
        "Source": props.from_,
        "Destination": {"ToAddresses": props.recipients(), "CcAddresses": props.cc,
                        "BccAddresses": props.bcc},
        "Message": {"Subject": {"Data": props.subject, "Charset": "UTF-8"}, "Body": body},
    }
    if props.reply_to:
        kwargs["ReplyToAddresses"] = props.reply_to
    with aws_errors("ses SendEmail"):
        answer = ctx.client("ses").send_email(**kwargs)
    return {"messageId": answer["MessageId"]}


class EmailOutput(Output):
    """SES's id of the message."""

    message_id: str


ACTIONS = [ActionSpec("email", "send", EmailProps, send, EmailOutput)]
