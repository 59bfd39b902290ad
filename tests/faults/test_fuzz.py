"""Fuzzing the three places where strangers' bytes enter: the MIME parser, the CDR parser and the form validators.
Whatever comes in, none of them raises anything but its own refusal, and nothing is lost: a well-formed mail
keeps its subject and text, every CDR record becomes a row or a rejection with its line, every refused form
names a field. The runs are bounded (a fixed number of examples each) and deterministic per Hypothesis seed."""

from __future__ import annotations

import io
from email.message import EmailMessage
from email.policy import default as default_policy

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channels.email.parse import ParsedMail, parse_mail
from channels.phone.cdr import CdrLines, CdrRejection, CdrRow, read_cdr
from channels.webform.form import ContactForm, FormErrors, validate

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=300)
"""Any Unicode a person or a broken client might send (lone surrogates cannot be encoded, so are left out)."""
WORDS = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), min_size=1, max_size=80) \
    .map(str.strip).filter(bool)


@FUZZ
@given(st.binary(max_size=4000))
def test_any_bytes_parse_to_a_mail_without_raising(raw: bytes) -> None:
    parsed = parse_mail(raw, "fallback@example.org")
    assert isinstance(parsed, ParsedMail)
    assert parsed.raw == raw  # the raw copy is always kept


@FUZZ
@given(st.lists(st.sampled_from([b"From: ", b"Subject: =?utf-8?b?", b"Content-Type: multipart/mixed; boundary=",
                                 b"--", b"\r\n", b"\n", b"Content-Transfer-Encoding: base64", b"=?koi8-r?q?",
                                 b"Content-Type: text/html; charset=", b"<p>", b"\xff\xfe", b"=\r\n", b"\"b\""]),
                max_size=60),
       st.binary(max_size=200))
def test_mime_shaped_garbage_parses_without_raising(pieces: list[bytes], tail: bytes) -> None:
    raw = b"".join(pieces) + tail
    assert isinstance(parse_mail(raw), ParsedMail)


@FUZZ
@given(subject=WORDS, body=TEXT.filter(lambda t: t.strip()), html=st.booleans(),
       charset=st.sampled_from(["utf-8", "koi8-r", "windows-1251", "iso-8859-1"]))
def test_a_well_formed_mail_keeps_its_subject_and_text(subject: str, body: str, html: bool, charset: str) -> None:
    message = EmailMessage(policy=default_policy)
    message["From"], message["To"], message["Subject"] = "Client <client@example.org>", "support@example.com", subject
    message["Message-ID"] = "<fuzz@example.org>"
    try:
        body.encode(charset)
    except UnicodeEncodeError:
        charset = "utf-8"
    message.set_content(body, charset=charset)
    if html:
        message.add_alternative(f"<p>{body.replace('<', '&lt;')}</p>", subtype="html", charset=charset)
    parsed = parse_mail(message.as_bytes())
    assert parsed.subject == " ".join(subject.split()), (parsed.subject, subject)
    assert " ".join(body.split()) in " ".join(parsed.text.split())
    assert parsed.message_id == "<fuzz@example.org>" and parsed.sender and parsed.sender.address == "client@example.org"
    assert not any(p.startswith("parser failed") for p in parsed.problems), parsed.problems


CDR_FIELD = st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=30)


@FUZZ
@given(st.lists(st.text(st.characters(blacklist_categories=("Cs",)), max_size=200), max_size=30))
def test_any_cdr_text_reads_without_raising(lines: list[str]) -> None:
    data = "\n".join(lines).encode("utf-8", "surrogatepass")
    results = list(read_cdr(CdrLines(io.BytesIO(data)), default_region="GB"))
    assert all(isinstance(r, (CdrRow, CdrRejection)) for r in results)


@FUZZ
@given(st.lists(st.lists(CDR_FIELD.filter(lambda f: '"' not in f and "," not in f), min_size=1, max_size=20)
                .filter(lambda fields: any(f.strip() for f in fields) and fields[0].strip() != "accountcode"),
                max_size=30))
def test_every_cdr_record_becomes_a_row_or_a_rejection_with_its_line(records: list[list[str]]) -> None:
    data = "".join(",".join(fields) + "\n" for fields in records).encode()
    results = list(read_cdr(CdrLines(io.BytesIO(data)), default_region="GB"))
    assert [r.line for r in results] == list(range(1, len(records) + 1))  # one each, none lost, none invented
    for rejection in (r for r in results if isinstance(r, CdrRejection)):
        assert rejection.reason and rejection.raw == ",".join(records[rejection.line - 1])


FORM_FIELDS = sorted(ContactForm.model_fields)


@FUZZ
@given(st.dictionaries(st.sampled_from(FORM_FIELDS + ["other", "", "__class__"]),
                       st.one_of(TEXT, st.integers(), st.none(), st.lists(TEXT, max_size=3), st.booleans()),
                       max_size=12))
def test_the_form_validator_accepts_or_names_what_is_wrong(data: dict[str, object]) -> None:
    try:
        form, identities = validate(data, "GB")
    except FormErrors as exc:
        assert exc.fields and all(isinstance(v, str) and v for v in exc.fields.values())
        assert set(exc.fields) <= set(FORM_FIELDS) | set(data) | {"email", "phone", "form"}, exc.fields
        return
    assert identities, "an accepted form has an address to answer"
    assert form.message.strip()


@FUZZ
@given(name=WORDS, message=TEXT.filter(lambda t: t.strip()), subject=st.one_of(st.none(), WORDS))
def test_a_complete_form_is_accepted_with_its_text_unchanged(name: str, message: str, subject: str | None) -> None:
    data: dict[str, object] = {"name": name, "email": "client@example.org", "message": message}
    if subject is not None:
        data["subject"] = subject
    try:
        form, identities = validate(data, "GB")
    except FormErrors as exc:
        # Only the documented limits may refuse it.
        assert set(exc.fields) <= {"name", "message", "subject"}, exc.fields
        assert all(("long" in v or "at most" in v or "characters" in v) for v in exc.fields.values()), exc.fields
        return
    assert form.message.strip() == message.strip()  # nothing but the surrounding whitespace may go
    assert [i.address for i in identities] == ["client@example.org"]
