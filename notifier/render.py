"""Rendering templated outbox rows when the worker delivers them: no transaction that writes a notice renders it.

A row with a `template` holds the template's name and its parameters; its number is the row's ticket. The
rendered subject and text are written back to the row once it is sent, so its history shows what went out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment

from notifier.compose import CHANNEL as EMAIL
from notifier.compose import paragraphs, ticket_subject
from tickets.language import answer_in


@dataclass(frozen=True)
class Rendered:
    subject: str | None
    text: str
    html: str | None


class NoticeRenderer:
    def __init__(self, templates: Environment, public_url: str) -> None:
        self._templates = templates
        self._public_url = public_url.rstrip("/")

    def render(self, template: str, params: Mapping[str, Any], ticket_id: int | None, channel: str) -> Rendered:
        """The row's subject, text and HTML; ValueError for a template this version does not know."""
        if ticket_id is None:
            raise ValueError(f"a {template} notice needs its ticket")
        language = answer_in(params.get("language"))
        if template == "ack":
            key = params.get("portal_key")
            text = self._templates.get_template(f"ack.{language}.txt").render(
                name=params.get("name"), number=ticket_id, subject=params.get("subject") or "",
                team=params.get("team") or "", portal=f"{self._public_url}/portal/{key}" if key else None)
            subject = ticket_subject(ticket_id, str(params.get("subject") or ""), reply=False)
        elif template == "assigned":
            whole = self._templates.get_template(f"assigned.{language}.txt").render(
                number=ticket_id, subject=params.get("subject") or "", previous=params.get("previous"),
                client=params.get("client") or "", channel=params.get("channel") or "",
                priority=params.get("priority") or "", reason=params.get("reason"),
                link=f"{self._public_url}/desk/tickets/{ticket_id}")
            if channel != EMAIL:
                return Rendered(None, whole, None)
            subject, _, text = whole.partition("\n")
            subject = subject[:500]
        else:
            raise ValueError(f"unknown notice template {template!r}")
        html = self._templates.get_template("message.html").render(paragraphs=paragraphs(text), subject=subject,
                                                                     lang=language)
        return Rendered(subject, text, html)
