"""The email parser against a corpus shaped like real mail: every file parses, and each file
yields exactly the subject, sender, text, threading, attachments and flags it should."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from channels.email import parse as parse_module
from channels.email.parse import (
    PREVIEW_SOURCE_LIMIT,
    Address,
    ParsedMail,
    html_to_text,
    is_from_mailer_daemon,
    parse_mail,
    ticket_token,
)

CORPUS = Path(__file__).resolve().parent.parent / "corpus" / "email"
FILES = sorted(CORPUS.glob("*.eml"))


def load(name: str) -> ParsedMail:
    return parse_mail((CORPUS / name).read_bytes())


@dataclass(frozen=True)
class Expect:
    subject: str
    sender: str | None
    phrase: str
    """Must appear in the decoded text."""
    quoted: str | None = None
    """Part of the text that the preview must drop (quoted history or signature)."""
    auto: bool = False
    broken: bool = False
    bounce: tuple[str | None, str] | None = None
    """(original Message-ID, a failed recipient)."""


EXPECT: dict[str, Expect] = {
    "ru-utf8-8bit.eml": Expect(
        "Не работает принтер в бухгалтерии", "ivan.petrov@example.org", "«Замятие бумаги»", quoted="ООО «Ромашка»"
    ),
    "ru-utf8-raw-headers.eml": Expect(
        "Нужен доступ к общей папке «Проекты»", "a.novikov@example.org", "\\\\fs01\\Проекты"
    ),
    "ru-koi8r-qp.eml": Expect(
        "Восстановление доступа к почте", "sidorov@example.org", "неверное имя пользователя или пароль"
    ),
    "ru-cp1251-base64.eml": Expect(
        "Ошибка прав в 1С", "a.kuznetsova@example.net", "«Недостаточно прав для выполнения операции»",
        quoted="Анна Кузнецова",
    ),
    "ru-cp1251-qp.eml": Expect("Не открывается сайт ФНС", "o.smirnova@example.net", "«Сертификат недействителен»"),
    "de-iso8859-1-qp.eml": Expect(
        "Drucker druckt nur leere Seiten (Büro München)", "j.weiss@example.de", "Können Sie bitte einen Techniker",
        quoted="Mit freundlichen Grüßen",
    ),
    "pl-iso8859-2-8bit.eml": Expect(
        "Drukarka sieciowa nie działa - księgowość", "zofia@example.pl",
        "nie działa nam drukarka sieciowa w księgowości",
    ),
    "fr-iso8859-15-qp.eml": Expect(
        "Facture de 1 250 € introuvable", "francoise.lefevre@example.fr", "1 250 € n'apparaît pas",
        quoted="Cordialement",
    ),
    "ja-iso2022jp.eml": Expect("請求書が開けません", "yamada@example.jp", "請求書のPDFが開けません"),
    "zh-gb2312-base64.eml": Expect("无法登录账户", "wangwei@example.cn", "请帮忙重置密码"),
    "multipart-alternative.eml": Expect(
        "VPN disconnects every 10 minutes", "emily.carter@example.com", "client version 5.2"
    ),
    "mixed-alternative-attachments.eml": Expect(
        "Invoice discrepancy for October", "mark.oneil@example.com", "only have 12 seats"
    ),
    "related-inline-images.eml": Expect(
        "Error dialog when exporting the report", "laura.chen@example.com", "and then the app closes"
    ),
    "attachment-rfc2231-names.eml": Expect(
        "Акт сверки во вложении", "m.ivanova@example.org", "направляю акт сверки и договор"
    ),
    "attachment-encoded-word-names.eml": Expect(
        "Logs and screenshot", "s.volkov@example.org", "logs from the terminal server"
    ),
    "reply-gmail.eml": Expect(
        "Re: [#123] Printer on 3rd floor jams", "emily.carter@example.com", "still jams after two pages",
        quoted="replace the toner cartridge",
    ),
    "reply-outlook.eml": Expect(
        "RE: [#124] Shared drive not mapped", "tom.baker@example.com", "Can someone connect remotely today?",
        quoted="please reboot your PC",
    ),
    "reply-thunderbird-flowed.eml": Expect(
        "Re: [#125] Calendar sync", "hans.becker@example.de", "the last entry that arrived is from Friday afternoon",
        quoted="remove the account from the phone",
    ),
    "reply-apple-mail.eml": Expect(
        "Re: [#126] Wi-Fi password for guests", "olivia@example.co.uk", "the new password works for the visitors",
        quoted="guest password changes every Monday",
    ),
    "reply-ru-thunderbird.eml": Expect(
        "Re: [#127] Не работает принтер в бухгалтерии", "ivan.petrov@example.org",
        "после перезагрузки принтер заработал",
        quoted="выключить принтер на минуту",
    ),
    "reply-ru-gmail.eml": Expect(
        "Re: [#128] Акт сверки во вложении", "m.ivanova@example.org", "Вопрос можно закрывать",
        quoted="расхождений нет",
    ),
    "reply-ru-outlook.eml": Expect(
        "RE: [#129] Ошибка прав в 1С", "a.kuznetsova@example.net", "снова не могу войти в 1С",
        quoted="права восстановлены",
    ),
    "references-chain.eml": Expect(
        "Re: Re: Re: [#130] Laptop replacement", "emily.carter@example.com", "bring the old laptop on Thursday"
    ),
    "autoreply-outlook-oof.eml": Expect(
        "Automatic reply: [#124] Shared drive not mapped", "tom.baker@example.com",
        "out of the office until 16 November",
        auto=True,
    ),
    "autoreply-gmail-vacation.eml": Expect(
        "Re: [#123] Printer on 3rd floor jams", "emily.carter@example.com", "on vacation until Monday", auto=True
    ),
    "autoreply-bulk-newsletter.eml": Expect(
        "November product update: faster backups", "news@mailer.example.net", "Backups are now up to 3× faster",
        auto=True,
    ),
    "autoreply-ru-avtootvet.eml": Expect(
        "Автоответ: Re: [#131] Не открывается сайт ФНС", "o.smirnova@example.net", "Я в отпуске до 20 ноября",
        auto=True,
    ),
    "bounce-postfix-dsn.eml": Expect(
        "Undelivered Mail Returned to Sender", "mailer-daemon@mail.switchboard.example", "could not\nbe delivered",
        auto=True,  # Postfix marks its bounces Auto-Submitted: auto-replied
        bounce=("<ticket-132.1@switchboard.example>", "no.such.user@example.org"),
    ),
    "bounce-exchange-ndr.eml": Expect(
        "Undeliverable: [#133] Your VPN certificate expires soon", "postmaster@contoso.example.com",
        "couldn't be delivered", bounce=("<ticket-133.2@switchboard.example>", "j.doe@contoso.example.com"),
    ),
    "bounce-qmail-nondsn.eml": Expect(
        "failure notice", "mailer-daemon@mx.example.net", "wasn't able to deliver your message",
        bounce=("<ticket-134.4@switchboard.example>", "old.address@example.net"),
    ),
    "broken-missing-boundary.eml": Expect(
        "Cannot print PDF files", "kevin.hall@example.com", "Every PDF I print comes out as a blank page", broken=True
    ),
    "broken-bad-base64.eml": Expect(
        "Касса не печатает чеки", "d.orlov@example.org", "касса перестала печатать чеки после обновления", broken=True
    ),
    "broken-wrong-charset-ascii-cp1251.eml": Expect(
        "Printer in room 101", "n.fedorov@example.org", "В кабинете 101 принтер печатает полосами", broken=True
    ),
    "broken-unknown-charset.eml": Expect(
        "Mail client problem", "sidorov@example.org", "Почтовая программа не получает новые письма", broken=True
    ),
    "broken-8bit-headers-cp1251.eml": Expect(
        "Не приходят письма от банка", "s.egorova@example.org", "не приходят письма от банка с выписками", broken=True
    ),
    "broken-encoded-words.eml": Expect(
        "Проблема с почтой - срочно [café]", "jose.garcia@example.es", "My mailbox stopped syncing", broken=True
    ),
    "broken-truncated.eml": Expect(
        "Backup log", "laura.chen@example.com", "The nightly backup failed again", broken=True
    ),
    "huge-headers-500-received.eml": Expect(
        "Message that went through many relays", "loop@example.net", "five hundred Received headers"
    ),
    "no-message-id.eml": Expect("Monitor flickers", "kevin.hall@example.com", "flickers every few seconds"),
    "no-from.eml": Expect("Scanner sends to wrong folder", None, "wrong shared folder"),
    "html-only.eml": Expect(
        "Re: [#135] Access to the CRM", "daniel.kim@example.com", 'it says "account locked"',
        quoted="your access has been granted",
    ),
    "empty-body.eml": Expect("Please call me back", "kevin.hall@example.com", ""),
    "forward-as-attachment.eml": Expect(
        'Fwd: Suspicious email from "IT department"', "emily.carter@example.com", "Is this phishing?"
    ),
}


# ---------------------------------------------------------------- the whole corpus


def test_corpus_is_large_and_every_file_has_expectations() -> None:
    assert len(FILES) >= 30
    assert {path.name for path in FILES} == set(EXPECT)


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.name)
def test_every_corpus_file_parses_and_keeps_the_raw_bytes(path: Path) -> None:
    raw = path.read_bytes()
    mail = parse_mail(raw)
    assert mail.raw == raw and len(mail.raw) > 0
    assert not [p for p in mail.problems if "parser failed" in p or p.startswith("read_")]
    assert "\r" not in mail.text


@pytest.mark.parametrize("name", sorted(EXPECT))
def test_corpus_file_yields_what_it_should(name: str) -> None:
    expect = EXPECT[name]
    mail = load(name)
    assert mail.subject == expect.subject
    assert (mail.sender.address if mail.sender else None) == expect.sender
    assert expect.phrase in mail.text
    if expect.phrase:
        assert expect.phrase.split("\n")[0] in mail.preview
    if expect.quoted is not None:
        assert expect.quoted in mail.text
        assert expect.quoted not in mail.preview
    assert (mail.auto_reply is not None) == expect.auto, mail.auto_reply
    if expect.bounce is None:
        assert mail.bounce is None
    else:
        assert mail.bounce is not None
        assert mail.bounce.original_message_id == expect.bounce[0]
        assert expect.bounce[1] in mail.bounce.recipients
    assert bool(mail.problems) == expect.broken, mail.problems
    assert mail.date is None or mail.date.tzinfo is not None


# ---------------------------------------------------------------- headers and threading


def test_addresses_are_decoded_and_lower_cased() -> None:
    mail = load("multipart-alternative.eml")
    assert mail.sender == Address("Emily Carter", "emily.carter@example.com")
    assert mail.reply_to == Address("Emily (work)", "e.carter@example.com")  # comment kept, as mail clients show it
    assert mail.to == (Address("Support", "support@switchboard.example"),)
    assert mail.cc == (Address("Tom Baker", "tom.baker@example.com"), Address("Ops, Team", "ops@example.com"))
    assert load("de-iso8859-1-qp.eml").sender == Address("Jürgen Weiß", "j.weiss@example.de")
    assert load("ru-koi8r-qp.eml").sender == Address("Пётр Сидоров", "sidorov@example.org")
    assert load("ru-cp1251-base64.eml").sender == Address("Анна Кузнецова", "a.kuznetsova@example.net")
    assert load("ja-iso2022jp.eml").sender == Address("山田太郎", "yamada@example.jp")
    assert load("broken-8bit-headers-cp1251.eml").sender == Address("Светлана Егорова", "s.egorova@example.org")
    assert load("ru-utf8-raw-headers.eml").to == (Address("Служба поддержки", "support@switchboard.example"),)


def test_gmail_references_and_in_reply_to() -> None:
    mail = load("reply-gmail.eml")
    assert mail.message_id == "<CAH+gmail0015reply=x7Q@mail.gmail.com>"
    assert mail.in_reply_to == "<ticket-123.2@switchboard.example>"
    assert mail.references == (
        "<CAH+first0001@mail.gmail.com>",
        "<ticket-123.1@switchboard.example>",
        "<ticket-123.2@switchboard.example>",
    )
    assert mail.thread_ids[0] == "<ticket-123.2@switchboard.example>"


def test_folded_references_chain_is_parsed_in_order_without_duplicates() -> None:
    mail = load("references-chain.eml")
    assert mail.message_id == "<CAH+chain0022=final@mail.gmail.com>"  # value folded onto its own line
    assert mail.in_reply_to == "<ticket-130.3@switchboard.example>"  # trailing comment ignored
    assert mail.references == (
        "<CAH+chain0001@mail.gmail.com>",
        "<ticket-130.1@switchboard.example>",
        "<CAH+chain0002@mail.gmail.com>",
        "<ticket-130.2@switchboard.example>",
        "<CAH+chain0003@mail.gmail.com>",
        "<ticket-130.3@switchboard.example>",
    )


def test_missing_headers_give_none_not_errors() -> None:
    assert load("no-message-id.eml").message_id is None
    assert load("no-message-id.eml").references == ()
    no_from = load("no-from.eml")
    assert no_from.sender is None
    assert no_from.message_id == "<no-from-0039@scanner.example.com>"


def test_sender_falls_back_to_sender_return_path_then_envelope() -> None:
    raw = (CORPUS / "no-from.eml").read_bytes()
    assert parse_mail(raw, envelope_from="<Scanner@Example.com>").sender == Address("", "scanner@example.com")
    assert parse_mail(raw, envelope_from="<>").sender is None
    with_return_path = b"Return-Path: <Bounces@Example.net>\r\n" + raw
    assert parse_mail(with_return_path, envelope_from="x@y.z").sender == Address("", "bounces@example.net")
    with_sender = b"Sender: Front Desk <desk@example.net>\r\n" + with_return_path
    assert parse_mail(with_sender).sender == Address("Front Desk", "desk@example.net")


def test_dates_are_timezone_aware() -> None:
    assert load("de-iso8859-1-qp.eml").date == datetime(2026, 11, 10, 8, 5, tzinfo=timezone(timedelta(hours=1)))
    qmail = load("bounce-qmail-nondsn.eml").date  # "-0000": UTC, local zone unknown
    assert qmail == datetime(2026, 11, 10, 6, 29, tzinfo=UTC) and qmail.tzinfo is not None


def test_huge_header_block_is_parsed() -> None:
    mail = load("huge-headers-500-received.eml")
    assert (CORPUS / "huge-headers-500-received.eml").read_bytes().count(b"Received:") == 500
    assert mail.message_id == "<huge-headers-0037@example.net>"
    assert mail.problems == ()


# ---------------------------------------------------------------- bodies


def test_plain_part_of_alternative_is_the_text_and_html_is_kept_raw() -> None:
    mail = load("multipart-alternative.eml")
    assert mail.text.startswith("Hi,\n\nSince Monday the VPN client")
    assert mail.html is not None and "I&#39;m on Windows 11" in mail.html  # raw, not sanitised here


def test_html_only_message_is_rendered_as_text() -> None:
    mail = load("html-only.eml")
    assert mail.html is not None and "<script>" in mail.html
    assert "alert(1)" not in mail.text and "color:red" not in mail.text and "Reply" not in mail.text
    assert "I still can't log in to the CRM — it says \"account locked\"." in mail.text
    assert "- Browser: Firefox\n- Time: 09:15" in mail.text
    assert "> Hello Daniel, your access has been granted." in mail.text
    assert mail.preview.endswith("Daniel")


def test_format_flowed_paragraphs_are_joined() -> None:
    mail = load("reply-thunderbird-flowed.eml")
    paragraph = "the calendar still does not sync with my phone, the last entry that arrived is from Friday afternoon."
    assert paragraph in mail.text
    assert "> Dear Hans, please remove the account from the phone and add it again." in mail.text
    assert "\n-- \nHans Becker" in mail.text  # the signature separator is not a soft break


def test_empty_body_gives_empty_text_and_preview() -> None:
    mail = load("empty-body.eml")
    assert (mail.text, mail.preview, mail.html, mail.attachments) == ("", "", None, ())


def test_newsletter_is_html_only_and_bulk() -> None:
    mail = load("autoreply-bulk-newsletter.eml")
    assert mail.text.startswith("November update\n\nBackups are now up to 3× faster.")
    assert mail.auto_reply == "Precedence: bulk"


@pytest.mark.parametrize(
    ("name", "preview"),
    [
        ("reply-gmail.eml", "I tried the new toner but it still jams after two pages."),
        (
            "reply-outlook.eml",
            "Hi,\n\nThe S: drive is still missing after the reboot. Can someone connect remotely today?",
        ),
        ("reply-apple-mail.eml", "Thank you, the new password works for the visitors.\n\nOlivia"),
        ("reply-ru-thunderbird.eml", "Спасибо, после перезагрузки принтер заработал."),
        ("reply-ru-gmail.eml", "Получили, всё сходится. Вопрос можно закрывать."),
        ("reply-ru-outlook.eml", "Добрый день.\n\nПроблема повторилась сегодня в 9:05, снова не могу войти в 1С."),
    ],
)
def test_preview_is_exactly_the_new_part_of_a_reply(name: str, preview: str) -> None:
    assert load(name).preview == preview


def test_preview_of_a_huge_body_is_bounded_and_fast_path_safe() -> None:
    line = "The backup job failed again with error code 0x80070005 on server FS01.\n"
    body = line * (1_000_000 // len(line))
    raw = ("From: a@example.com\r\nSubject: log\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body).encode()
    mail = parse_mail(raw)
    assert len(mail.text) > 900_000
    assert 0 < len(mail.preview) <= PREVIEW_SOURCE_LIMIT and mail.preview.startswith("The backup job failed")
    assert mail.problems == ()


# ---------------------------------------------------------------- attachments


def test_nested_mixed_alternative_with_attachments() -> None:
    mail = load("mixed-alternative-attachments.eml")
    assert [(a.filename, a.content_type, a.size, a.inline) for a in mail.attachments] == [
        ("invoice-2026-10.pdf", "application/pdf", 1540, False),
        ("seats.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", 2052, False),
    ]
    assert mail.attachments[0].data.startswith(b"%PDF-1.4") and mail.attachments[1].data.startswith(b"PK\x03\x04")
    assert "<b>14 licenses</b>" in (mail.html or "")


def test_related_inline_images_keep_content_ids() -> None:
    mail = load("related-inline-images.eml")
    assert mail.html_cids == ("image001.png@01DC52F1.8E1B2C40", "logo.jpg@example.com")
    png, jpg = mail.attachments
    assert (png.filename, png.content_type, png.content_id, png.inline) == (
        "image001.png", "image/png", "image001.png@01DC52F1.8E1B2C40", True,
    )
    assert png.data.startswith(b"\x89PNG\r\n\x1a\n")
    assert (jpg.filename, jpg.content_type, jpg.content_id, jpg.inline) == (
        "attachment-2.jpg", "image/jpeg", "logo.jpg@example.com", True,
    )
    assert jpg.data.startswith(b"\xff\xd8") and jpg.data.endswith(b"\xff\xd9") and jpg.size == 313


def test_rfc2231_file_names_are_decoded_including_continuations() -> None:
    mail = load("attachment-rfc2231-names.eml")
    assert [(a.filename, a.content_type) for a in mail.attachments] == [
        ("Акт сверки.txt", "text/plain"),
        ("Договор № 17 от 01.11.2026.pdf", "application/pdf"),
    ]
    assert mail.attachments[0].data.decode("utf-8").startswith("Акт сверки за октябрь 2026")
    assert mail.attachments[1].size == 1540


def test_encoded_word_file_names_and_synthesised_names() -> None:
    mail = load("attachment-encoded-word-names.eml")
    assert [(a.filename, a.content_type, a.size, a.inline) for a in mail.attachments] == [
        ("журнал ошибок.zip", "application/zip", 1024, False),
        ("снимок экрана.png", "image/png", 73, False),  # windows-1251 Q-encoded name= only
        ("attachment-3.bin", "application/octet-stream", 64, False),
    ]


def test_forwarded_message_is_an_attachment_not_the_body() -> None:
    mail = load("forward-as-attachment.eml")
    assert mail.text == "Is this phishing? I got it this morning."
    (forwarded,) = mail.attachments
    assert forwarded.content_type == "message/rfc822" and forwarded.filename == "attachment-1.eml"
    assert b"Subject: Your mailbox is full" in forwarded.data and b"Click here to upgrade" in forwarded.data


# ---------------------------------------------------------------- automation: auto-replies and bounces


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("autoreply-outlook-oof.eml", "X-Auto-Response-Suppress: All with out-of-office subject"),
        ("autoreply-gmail-vacation.eml", "Auto-Submitted: auto-replied"),
        ("autoreply-bulk-newsletter.eml", "Precedence: bulk"),
        ("autoreply-ru-avtootvet.eml", "out-of-office subject: Автоответ: Re: [#131] Не открывается сайт ФНС"),
        ("bounce-postfix-dsn.eml", "Auto-Submitted: auto-replied"),
    ],
)
def test_auto_reply_reasons(name: str, reason: str) -> None:
    assert load(name).auto_reply == reason


def test_auto_response_suppress_alone_is_not_an_auto_reply() -> None:
    raw = (CORPUS / "autoreply-outlook-oof.eml").read_bytes().replace(
        b"Subject: Automatic reply: [#124]", b"Subject: RE: [#124]"
    )
    assert parse_mail(raw).auto_reply is None
    assert parse_mail(raw.replace(b"Content-Language", b"Auto-Submitted: no\r\nContent-Language")).auto_reply is None
    assert parse_mail(raw.replace(b"Content-Language", b"X-Autoreply: yes\r\nContent-Language")).auto_reply == (
        "X-Autoreply: yes"
    )


def test_postfix_dsn_bounce_details() -> None:
    bounce = load("bounce-postfix-dsn.eml").bounce
    assert bounce is not None
    assert bounce.recipients == ("no.such.user@example.org",)
    assert bounce.status == "5.1.1"
    assert bounce.diagnostic == (
        "550 5.1.1 <no.such.user@example.org>: Recipient address rejected: User unknown in virtual mailbox table"
    )


def test_exchange_ndr_bounce_details() -> None:
    mail = load("bounce-exchange-ndr.eml")
    assert mail.bounce is not None
    assert mail.bounce.recipients == ("j.doe@contoso.example.com",)
    assert mail.bounce.status == "5.1.10"
    assert mail.bounce.diagnostic is not None and "RecipientNotFound" in mail.bounce.diagnostic
    assert [a.content_type for a in mail.attachments] == ["message/delivery-status", "message/rfc822"]


def test_classic_mailer_daemon_bounce_details() -> None:
    bounce = load("bounce-qmail-nondsn.eml").bounce
    assert bounce is not None
    assert bounce.recipients == ("old.address@example.net",)
    assert bounce.status == "5.1.1"
    assert bounce.diagnostic == "Sorry, no mailbox here by that name. (#5.1.1)"


def test_successful_delivery_report_is_not_a_bounce() -> None:
    raw = (CORPUS / "bounce-postfix-dsn.eml").read_bytes().replace(b"Action: failed", b"Action: delivered")
    raw = raw.replace(b"Auto-Submitted: auto-replied\r\n", b"")
    mail = parse_mail(raw)
    assert mail.bounce is None
    assert mail.auto_reply == "delivery status notification (delivered)"


def test_mail_from_postmaster_without_failure_evidence_is_not_a_bounce() -> None:
    raw = (
        b"From: postmaster@example.org\r\nTo: support@switchboard.example\r\nSubject: New MX from Monday\r\n"
        b"Content-Type: text/plain\r\n\r\nWe move our mail server on Monday.\r\n"
    )
    assert parse_mail(raw).bounce is None


@pytest.mark.parametrize(
    ("sender", "expected"),
    [
        ("MAILER-DAEMON@mx.example.net", True),
        ("mailer-daemon", True),
        ("Mail Delivery System <MAILER-DAEMON@mail.example.org>", True),
        (Address("", "postmaster@contoso.example.com"), True),
        ("daemon@example.org", False),
        ("emily.carter@example.com", False),
        (None, False),
    ],
)
def test_is_from_mailer_daemon(sender: Address | str | None, expected: bool) -> None:
    assert is_from_mailer_daemon(sender) is expected


# ---------------------------------------------------------------- broken mail


def test_missing_boundary_reads_the_body_as_text() -> None:
    mail = load("broken-missing-boundary.eml")
    assert "Every PDF I print comes out as a blank page." in mail.text
    assert any("without a boundary" in p for p in mail.problems)


def test_truncated_base64_keeps_what_decodes() -> None:
    mail = load("broken-bad-base64.eml")
    assert mail.text.startswith("Добрый день! Прикладываю выгрузку журнала")
    assert "магазин на Лен" in mail.text
    assert any("base64" in p and "truncated" in p for p in mail.problems)


def test_wrong_and_unknown_charsets_still_produce_text() -> None:
    wrong = load("broken-wrong-charset-ascii-cp1251.eml")
    assert wrong.text.startswith("Здравствуйте! В кабинете 101")
    assert wrong.problems == ("message (text/plain): bytes are not valid us-ascii; decoded as cp1251 (detected)",)
    unknown = load("broken-unknown-charset.eml")
    assert unknown.text.startswith("Добрый день! Почтовая программа")
    assert unknown.problems == ("message (text/plain): unknown charset 'x-unknown'; decoded as koi8_r (detected)",)


def test_raw_8bit_headers_are_decoded_with_the_declared_body_charset() -> None:
    mail = load("broken-8bit-headers-cp1251.eml")
    assert mail.subject == "Не приходят письма от банка"
    assert any(p.startswith("Subject: raw 8-bit header not in UTF-8") for p in mail.problems)


def test_broken_encoded_words_are_repaired_and_reported() -> None:
    mail = load("broken-encoded-words.eml")
    assert mail.subject == "Проблема с почтой - срочно [café]"
    assert mail.sender == Address("José García", "jose.garcia@example.es")
    assert "Subject: unknown charset 'x-unknown'; decoded as utf-8" in mail.problems
    assert "Subject: malformed base64 encoded-word repaired" in mail.problems


def test_truncated_message_keeps_the_body_and_partial_attachment() -> None:
    mail = load("broken-truncated.eml")
    assert mail.text == "The nightly backup failed again, log attached."
    (log,) = mail.attachments
    assert log.filename == "backup.log" and log.data.startswith(b"2026-11-10 02:00:01 backup started")
    assert any("closing MIME boundary missing" in p for p in mail.problems)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff\xfe garbage",
        b"Subject: truncated hea",
        b"From: <<<@@@>>>\r\nTo: ,,,;;;\r\nDate: yesterday\r\nMessage-ID: \r\n"
        b"References: no brackets@here x\r\n\r\nbody",
        b"Content-Type: multipart/mixed; boundary=\"x\"\r\n\r\n--x\r\nContent-Type: text/plain; charset=\"\r\n\r\nhi",
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!!",
        b"Subject: =?utf-8?b?=?=?=?q?=ZZ?= =?\r\nContent-Type: text/html\r\n\r\n<p>unclosed <b><i>&bogus;",
        b"Content-Type: message/rfc822\r\n\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\n",
    ],
)
def test_malformed_input_never_raises(raw: bytes) -> None:
    mail = parse_mail(raw)
    assert mail.raw == raw
    assert isinstance(mail.text, str) and isinstance(mail.problems, tuple)


def test_content_type_without_semicolon_is_still_the_body() -> None:
    raw = b"From: a@example.com\r\nContent-Type: text/plain charset=utf-8\r\n\r\nThe printer is offline.\r\n"
    mail = parse_mail(raw)
    assert mail.text == "The printer is offline." and mail.attachments == ()


def test_mutated_corpus_never_raises() -> None:
    rng = random.Random(20261110)
    for path in FILES:
        original = path.read_bytes()
        for _ in range(6):
            raw = bytearray(original[: rng.randrange(1, len(original) + 1)])
            for _ in range(rng.randrange(0, 8)):
                raw[rng.randrange(len(raw))] = rng.randrange(256)
            mail = parse_mail(bytes(raw))
            assert mail.raw == bytes(raw)
            assert not [p for p in mail.problems if p.startswith("parser failed")]


def test_parser_crash_still_returns_the_raw_body(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(raw: bytes) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(parse_module._PARSER, "parsebytes", explode)
    mail = load("ru-utf8-8bit.eml")
    assert mail.problems == ("parser failed: RuntimeError: boom",)
    assert "Здравствуйте!" in mail.text and "Иван Петров" in mail.text
    assert mail.preview.startswith("Здравствуйте!") and "Иван Петров" not in mail.preview  # still cut from the raw text


def test_failing_step_loses_only_its_own_field(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*args: object) -> None:
        raise ValueError("bad header")

    monkeypatch.setattr(parse_module, "auto_reply_reason", explode)
    mail = load("autoreply-gmail-vacation.eml")
    assert mail.auto_reply is None
    assert mail.problems == ("read_auto_reply: ValueError: bad header",)
    assert mail.subject == "Re: [#123] Printer on 3rd floor jams" and "on vacation" in mail.text


# ---------------------------------------------------------------- helpers


@pytest.mark.parametrize(
    ("subject", "number"),
    [
        ("Re: [#123] Printer", 123),
        ("[#7]", 7),
        ("RE: AW: [#00042] Laptop", 42),
        ("Fwd: Re: [#12] first [#34] second", 12),
        ("Re: [123] Printer", None),
        ("Re: [# 123] Printer", None),
        ("Re: #123 Printer", None),
        ("Re: [Ticket#123] Printer", None),
        ("Re: (#123) Printer", None),
        ("Re: [#abc] Printer", None),
        ("", None),
        (None, None),
    ],
)
def test_ticket_token(subject: str | None, number: int | None) -> None:
    assert ticket_token(subject) == number


def test_ticket_token_in_corpus_subjects() -> None:
    assert ticket_token(load("reply-ru-outlook.eml").subject) == 129
    assert ticket_token(load("autoreply-outlook-oof.eml").subject) == 124
    assert ticket_token(load("multipart-alternative.eml").subject) is None


def test_html_to_text_keeps_structure_and_drops_scripts() -> None:
    html = (
        "<html><head><title>t</title><style>p{}</style></head><body>"
        "<p>Line&nbsp;one<br>Line two</p><ol><li>first</li><li>second</li></ol>"
        "<table><tr><td>a</td><td>b</td></tr></table><pre>  keep\n    indent</pre>"
        "<blockquote>quoted <blockquote>twice</blockquote></blockquote><script>x()</script></body></html>"
    )
    assert html_to_text(html) == (
        "Line one\nLine two\n\n- first\n- second\n\na b\n\n  keep\n    indent\n\n> quoted\n\n> > twice"
    )
