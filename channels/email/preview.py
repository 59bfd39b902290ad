"""The new part of a reply, for ticket lists: quoted history and signatures cut (our own Russian and
Gmail/Outlook patterns first, then mail-parser-reply); the full text is kept beside it."""

from __future__ import annotations

import re

DEFAULT_REPLY_LANGUAGES: tuple[str, ...] = ("en", "de", "fr", "es")
"""mail-parser-reply languages used for the preview; more languages mean more false cuts (its
Polish/Italian header patterns match ordinary lines such as "Data: ..."). Russian is handled here."""

PREVIEW_SOURCE_LIMIT = 200_000
"""Characters of body text the preview is taken from; a longer body is cut first."""

# Preview: quoted history and signatures stripped.
_QUOTE_START = re.compile(
    r"^[ \t>]*(?:"
    # Attribution lines end with ":"; the lookahead rejects other lines in O(line) before the
    # costlier alternatives run.
    r"(?=[^\n]*:[ \t]*$)(?:"
    r"[^\n]{0,300}\b(?:пишет|писал|написал|написала|написал\(а\))[ \t]*:"  # Thunderbird/Yandex: "…, Иван пишет:"
    r"|[^\n<]{0,300}\d[^\n<]{0,300}<[^<>\s@]+@[^<>\s]+>[ \t]*:"  # Gmail ru, Yandex, Mail.ru: "…, 10:15, Иван <a@b>:"
    r")[ \t]*$"
    r"|On[ \t][^\n]{5,300}(?:\n[ \t>]*[^\n]{0,150})?[ \t]wrote:[ \t]*$"  # Gmail/Apple/Thunderbird (Gmail wraps it)
    r"|-{3,}[ \t]*(?:Исходное сообщение|Original Message)[ \t]*-{3,}[ \t]*$"
    r"|\**(?:От|From)[ \t]*:\**[^\n]*\n[ \t>*]*(?:Отправлено|Дата|Sent|Date)[ \t]*:"  # Outlook header block
    r")",
    re.I | re.M,
)
_SIGNATURE_START = re.compile(r"^(?:-- ?|__+|С уважением\b.*|С наилучшими пожеланиями\b.*)$", re.I | re.M)
REPLY_PARSER_WINDOW = 8_000
"""Characters mail-parser-reply sees (it costs ~0.5 ms per KB); the new part of a reply is at the top."""


def reply_preview(text: str, languages: tuple[str, ...]) -> str:
    """The new part of a reply, for ticket lists; the full text stays in `text`.

    Our own cut runs first (Russian attributions, which mail-parser-reply 1.36 lacks, the
    language-independent Gmail/Yandex "…, Name <a@b>:" line, Outlook header blocks), then the
    library strips English/German/French/Spanish attributions, signatures and disclaimers."""
    source = text[:PREVIEW_SOURCE_LIMIT]
    cut = source
    quote = _QUOTE_START.search(cut)
    if quote and quote.start() > 0:
        cut = cut[: quote.start()]
    signature = _SIGNATURE_START.search(cut)
    if signature and signature.start() > 0:
        cut = cut[: signature.start()]
    body = ""
    try:
        from mailparser_reply.parser import EmailMessage

        window = cut[:REPLY_PARSER_WINDOW]
        replies = EmailMessage(text=window, languages=list(languages), keep_hyphen_lists=True).read().replies
        if replies:
            first = replies[0]
            found = len(replies) > 1 or first.signatures or first.disclaimers
            body = first.body if found or len(cut) <= REPLY_PARSER_WINDOW else cut
    except Exception:  # noqa: BLE001 — the preview is a convenience: our own cut stands
        body = cut
    lines = body.split("\n")
    while lines and (lines[-1].startswith(">") or not lines[-1].strip()):
        lines.pop()
    body = "\n".join(lines).strip()
    return body or source.strip()
