"""SMS text rules without I/O: segment counting in GSM-7 and UCS-2, cutting to a number of segments, quiet hours,
waiting times in words, the SMS settings and how receipts read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from notifier.alerts import waited
from notifier.quiet import quiet_until, quiet_window
from notifier.receipts import from_json, from_twilio
from notifier.senders import PermanentFailure
from notifier.sms import e164, fit, segments
from switchboard.settings import SmsSettings


@pytest.mark.parametrize(("text", "encoding", "count"), [
    ("a" * 160, "gsm7", 1),
    ("a" * 161, "gsm7", 2),
    ("a" * 306, "gsm7", 2),
    ("a" * 307, "gsm7", 3),
    ("€" * 80, "gsm7", 1),  # an extension character costs two septets
    ("€" * 81, "gsm7", 2),
    ("я" * 70, "ucs2", 1),
    ("я" * 71, "ucs2", 2),
    ("я" * 134, "ucs2", 2),
    ("я" * 135, "ucs2", 3),
    ("a" * 69 + "😀", "ucs2", 2),  # outside the BMP: two UTF-16 units
])
def test_segments(text: str, encoding: str, count: int) -> None:
    found = segments(text)
    assert (found.encoding, found.count) == (encoding, count)


def test_fit_keeps_a_short_text_and_cuts_a_long_one_within_the_segments() -> None:
    assert fit("Escalation #12: not processed", 1) == "Escalation #12: not processed"
    cut = fit("word " * 100, 2)
    assert segments(cut).count == 2 and cut.endswith("...") and len(cut) > 290
    russian = fit("Эскалация заявки " * 30, 2)
    assert segments(russian).count == 2 and russian.endswith("…") and len(russian) > 120
    assert fit("one  two\n three", 1) == "one two three"  # whitespace folded: newlines cost a character each


def test_numbers_are_sent_in_e164_and_impossible_ones_fail_for_good() -> None:
    assert e164("+44 7700 900002") == "+447700900002"
    assert e164("07700 900002", "GB") == "+447700900002"
    with pytest.raises(PermanentFailure, match="invalid number"):
        e164("12")
    with pytest.raises(PermanentFailure, match="invalid number"):
        e164("07700 900002")  # no country code and no region


def test_quiet_hours_across_midnight_and_in_the_calendars_time_zone() -> None:
    window = quiet_window("22:00-08:00")
    utc = UTC
    assert quiet_until(datetime(2026, 12, 1, 21, 59, tzinfo=utc), window, "UTC") is None
    assert quiet_until(datetime(2026, 12, 1, 22, 0, tzinfo=utc), window, "UTC") == datetime(2026, 12, 2, 8, tzinfo=utc)
    assert quiet_until(datetime(2026, 12, 2, 7, 59, tzinfo=utc), window, "UTC") == datetime(2026, 12, 2, 8, tzinfo=utc)
    assert quiet_until(datetime(2026, 12, 2, 8, 0, tzinfo=utc), window, "UTC") is None
    # 03:00 UTC is 06:00 in Moscow: quiet until 08:00 there, 05:00 UTC.
    assert quiet_until(datetime(2026, 12, 1, 3, 0, tzinfo=utc), window, "Europe/Moscow") == \
        datetime(2026, 12, 1, 5, 0, tzinfo=utc)
    day = quiet_window("12:00-13:00")
    assert quiet_until(datetime(2026, 12, 1, 12, 30, tzinfo=utc), day, "UTC") == datetime(2026, 12, 1, 13, tzinfo=utc)
    for bad in ("10pm-8am", "22:00", "08:00-08:00"):
        with pytest.raises(ValueError, match="quiet hours"):
            quiet_window(bad)


def test_waiting_time_in_words() -> None:
    assert waited(timedelta(days=1, hours=3, minutes=5), "en") == "1 d 3 h"
    assert waited(timedelta(minutes=25, seconds=4), "ru") == "25 мин 4 с"
    assert waited(timedelta(seconds=-3), "en") == "0 s"


def test_sms_settings_check_what_a_gateway_needs() -> None:
    assert SmsSettings(fields="to=phone, text=message").fields == {"to": "phone", "text": "message"}
    with pytest.raises(ValidationError, match="NAME=FIELD"):
        SmsSettings(fields="body")
    with pytest.raises(ValidationError, match="ACCOUNT_SID"):
        SmsSettings(gateway_url="https://api.twilio.com", profile="twilio")
    with pytest.raises(ValidationError, match="http"):
        SmsSettings(gateway_url="api.example.com/sms")
    with pytest.raises(ValidationError, match="quiet hours"):
        SmsSettings(quiet_hours="night")
    twilio = SmsSettings(gateway_url="https://api.twilio.com", profile="twilio", account_sid="AC1", auth_token="t")
    assert twilio.profile_spec().idempotency_header == "I-Twilio-Idempotency-Token"
    assert twilio.profile_spec().endpoint() == "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json"
    assert SmsSettings(idempotency_header="none").profile_spec().idempotency_header is None


def test_receipts_read_from_either_profile() -> None:
    twilio = from_twilio({"MessageSid": "SM1", "MessageStatus": "Undelivered", "ErrorCode": "30003"})
    assert (twilio.provider_id, twilio.status, twilio.error) == ("SM1", "undelivered", "provider error 30003")
    plain = from_json({"id": 42, "status": "DELIVERED", "reference": "sla:1:1:sms:+1"})
    assert (plain.provider_id, plain.status, plain.reference, plain.error) == (
        "42", "delivered", "sla:1:1:sms:+1", None
    )
