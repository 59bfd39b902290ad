"""Mail that a machine sent: auto-replies (RFC 3834 and what mail programs really send) and classic, non-DSN
bounces. Neither may open a ticket or be answered."""

from __future__ import annotations

import re

# Auto-replies (RFC 3834 and what mail programs actually send).
_OOF_SUBJECT = re.compile(
    r"^\s*(?:auto(?:matic|matische)?[ -]?(?:reply|response|antwort)|autoreply|auto:|out of (?:the )?office"
    r"|abwesenheitsnotiz|r[ée]ponse automatique|absence|vacation|автоответ|автоматический ответ"
    r"|нет на месте|в отпуске|odpowied[źz] automatyczna|respuesta autom[áa]tica|fuera de la oficina)",
    re.I,
)
_BULK_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply"})


def auto_reply_reason(headers: dict[str, str], subject: str, report_types: list[str]) -> str | None:
    """Why the message looks machine-sent, or None for mail from a person."""
    submitted = " ".join(headers.get("auto-submitted", "").split())
    if submitted and submitted.split(";", 1)[0].strip().lower() != "no":
        return f"Auto-Submitted: {submitted}"
    for name, label in (("x-autoreply", "X-Autoreply"), ("x-autorespond", "X-Autorespond")):
        value = headers.get(name)
        if value is not None and value.strip().lower() not in ("no", "false", "0"):
            return f"{label}: {' '.join(value.split())}".rstrip(": ")
    precedence = headers.get("precedence", "").strip().lower()
    if precedence in _BULK_PRECEDENCE:
        return f"Precedence: {precedence}"
    out_of_office = _OOF_SUBJECT.search(subject) is not None
    suppress = headers.get("x-auto-response-suppress")
    if out_of_office and suppress is not None:
        tokens = {t.strip().lower() for t in suppress.split(",")}
        if tokens & {"all", "oof", "autoreply"}:
            return f"X-Auto-Response-Suppress: {' '.join(suppress.split())} with out-of-office subject"
    if out_of_office:
        return f"out-of-office subject: {subject[:60]}"
    for report_type in report_types:
        if report_type == "disposition-notification":
            return "read receipt (multipart/report; disposition-notification)"
    return None


# Classic (non-DSN) bounces.
FAILURE_SUBJECT = re.compile(
    r"undeliver|undelivered|delivery (?:status notification|failure|has failed)|mail delivery failed"
    r"|returned mail|failure notice|недоставлен|не удалось доставить|не доставлено",
    re.I,
)
COPY_MARKER = re.compile(
    r"^.*(?:below this line is a copy of the message|original message follows|this is a copy of the message"
    r"|original message headers?|headers of the original message|returned message"
    r"|копия (?:вашего |исходного )?сообщения)",
    re.I | re.M,
)
BOUNCED_RECIPIENT = re.compile(
    r"^[ \t]*<([^<>\s@]+@[^<>\s]+)>|^[ \t]+([^<>\s@:]+@[^<>\s:]+?)[ \t]*$", re.M
)
EMBEDDED_ID = re.compile(r"^[ \t>]*Message-I[Dd]:[ \t]*(?:\r?\n[ \t]+)?(<[^<>\s]+>)", re.I | re.M)
STATUS_CODE = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
SMTP_REPLY = re.compile(r"\b[45]\d\d[ -][^\n]*")



def bounced_recipients(text: str) -> list[str]:
    """Addresses a classic bounce lists as failed: `<a@b>:` lines (qmail, Postfix) or indented bare addresses (Exim)."""
    return [(a or b).lower() for a, b in BOUNCED_RECIPIENT.findall(text)]
