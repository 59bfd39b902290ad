"""A logged call becomes one phone Inbound whose identity is the client's E.164 number: a wrong identity files
the call on the wrong customer, a wrong disposition opens (or fails to open) callback work, and a refused entry
must say which field is wrong so the PBX integration can be fixed. Covers the API entry (`entry_inbound`),
CDR rows (`cdr_inbound`) and the merging of a ring group's legs into one call (`merge_legs`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from channels.phone.cdr import CdrRejection, CdrRow, read_cdr
from channels.phone.entry import CallEntry, cdr_inbound, entry_inbound
from channels.phone.importer import merge_legs
from tickets.errors import InvalidInput
from tickets.inbound import CallDetails, Identity, Inbound

UTC = UTC
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def _entry(**fields: Any) -> CallEntry:
    data: dict[str, Any] = {
        "call_id": "pbx-1",
        "caller": "+7 495 123-45-67",
        "called": "+7 495 777-11-22",
        "direction": "in",
        "started_at": START,
        "answered_at": START + timedelta(seconds=5),
        "ended_at": START + timedelta(seconds=65),
        "disposition": "answered",
    }
    data.update(fields)
    return CallEntry.model_validate(data)


def _inbound(region: str | None = "RU", token_agent_id: int | None = None, **fields: Any) -> Inbound:
    return entry_inbound(_entry(**fields), region=region, now=NOW, token_agent_id=token_agent_id)


def _call(region: str | None = "RU", token_agent_id: int | None = None, **fields: Any) -> CallDetails:
    call = _inbound(region, token_agent_id, **fields).call
    assert call is not None
    return call


def _errors(region: str | None = "RU", **fields: Any) -> dict[str, str]:
    with pytest.raises(InvalidInput) as error:
        _inbound(region, **fields)
    return error.value.fields


# -- entry_inbound: what becomes the Inbound ------------------------------------------------------------


def test_inbound_call_is_a_phone_message_keyed_by_call_id_with_the_callers_number() -> None:
    inbound = _inbound(caller="8 495 123-45-67", caller_name="Ivan Petrov", notes="wants a refund")
    assert inbound.channel == "phone"
    assert inbound.identities == (Identity("phone", "+74951234567"),)
    assert inbound.external_id == "pbx-1"
    assert inbound.customer_name == "Ivan Petrov"
    assert inbound.body_text == "wants a refund"
    call = inbound.call
    assert call is not None
    assert (call.direction, call.disposition, call.source) == ("in", "answered", "api")
    assert (call.caller, call.called) == ("+74951234567", "+74957771122")
    assert (call.started_at, call.answered_at, call.ended_at) == (
        START, START + timedelta(seconds=5), START + timedelta(seconds=65)
    )
    assert call.notes == "wants a refund"


def test_local_number_is_normalised_with_the_region() -> None:
    assert _call(region="GB", caller="020 7946 0958").caller == "+442079460958"


def test_local_number_without_a_region_is_refused_on_caller() -> None:
    errors = _errors(region=None, caller="8 495 123-45-67")
    assert list(errors) == ["caller"]
    assert "country code" in errors["caller"]


def test_international_number_needs_no_region() -> None:
    assert _inbound(region=None, caller="+44 20 7946 0958", called=None).identities == (
        Identity("phone", "+442079460958"),
    )


@pytest.mark.parametrize("caller", ["anonymous", "Anonymous", "", "   ", None, "restricted"])
def test_withheld_caller_gives_no_identity(caller: str | None) -> None:
    inbound = _inbound(caller=caller, caller_name="Ivan")
    assert inbound.identities == ()
    assert inbound.call is not None and inbound.call.caller is None


@pytest.mark.parametrize("caller", ["201", "20 1", "12345"])
def test_inbound_caller_that_is_an_extension_is_refused(caller: str) -> None:
    errors = _errors(caller=caller)
    assert list(errors) == ["caller"]
    assert "internal extension" in errors["caller"]


def test_inbound_caller_that_is_not_a_number_is_refused() -> None:
    assert list(_errors(caller="ivan")) == ["caller"]


def test_inbound_called_line_that_is_not_a_phone_number_is_kept_as_written() -> None:
    call = _call(called="s")
    assert call.called == "s"
    assert _call(called="support-line").called == "support-line"


def test_inbound_called_extension_is_kept_as_the_extension() -> None:
    assert _call(called="20-1").called == "201"


def test_outbound_client_is_the_called_number_and_caller_name_is_not_the_clients() -> None:
    inbound = _inbound(direction="out", caller="201", called="8 (495) 987-65-43", caller_name="Olga (agent)")
    assert inbound.identities == (Identity("phone", "+74959876543"),)
    assert inbound.customer_name is None
    assert inbound.call is not None
    assert (inbound.call.direction, inbound.call.caller, inbound.call.called) == ("out", "201", "+74959876543")


@pytest.mark.parametrize("called", [None, "", "anonymous"])
def test_outbound_call_needs_the_called_number(called: str | None) -> None:
    assert _errors(direction="out", caller="201", called=called) == {
        "called": "an outbound call needs the client's number"
    }


def test_outbound_called_extension_is_refused() -> None:
    errors = _errors(direction="out", caller="201", called="202")
    assert list(errors) == ["called"]
    assert "internal extension" in errors["called"]


def test_outbound_caller_line_that_is_not_a_number_is_kept_as_written() -> None:
    assert _call(direction="out", caller="SIP/trunk", called="+74959876543").caller == "SIP/trunk"


# -- times ----------------------------------------------------------------------------------------------


def test_start_up_to_five_minutes_ahead_is_clock_skew_and_accepted() -> None:
    start = NOW + timedelta(minutes=5)
    assert _call(started_at=start, answered_at=None, ended_at=None).started_at == start


def test_start_more_than_five_minutes_ahead_is_refused() -> None:
    start = NOW + timedelta(minutes=5, seconds=1)
    assert _errors(started_at=start, answered_at=None, ended_at=None) == {"started_at": "is in the future"}


def test_end_before_start_is_refused() -> None:
    errors = _errors(answered_at=None, ended_at=START - timedelta(seconds=1))
    assert errors == {"ended_at": "is before started_at"}


@pytest.mark.parametrize(
    "answered_at",
    [START - timedelta(seconds=1), START + timedelta(seconds=66)],
    ids=["before-start", "after-end"],
)
def test_answer_outside_the_call_is_refused(answered_at: datetime) -> None:
    assert _errors(answered_at=answered_at)["answered_at"] == "must lie between started_at and ended_at"


def test_answer_before_start_reports_only_answered_at_not_a_derived_talk_time() -> None:
    assert _errors(answered_at=START - timedelta(seconds=1)) == {
        "answered_at": "must lie between started_at and ended_at"
    }


def test_answer_at_the_very_start_or_end_is_accepted() -> None:
    assert _call(answered_at=START).answered_at == START
    assert _call(answered_at=START + timedelta(seconds=65)).talk_time == 0


def test_answer_after_start_is_accepted_when_the_end_is_unknown() -> None:
    call = _call(answered_at=START + timedelta(hours=1), ended_at=None)
    assert call.answered_at == START + timedelta(hours=1)
    assert (call.duration, call.talk_time) == (0, 0)


@pytest.mark.parametrize("disposition", ["missed", "busy", "failed", "voicemail"])
def test_answer_time_is_dropped_for_calls_nobody_answered(disposition: str) -> None:
    # even an answer time outside the call is not an error: it is ignored
    call = _call(disposition=disposition, answered_at=START + timedelta(hours=5))
    assert call.answered_at is None
    assert call.talk_time == 0
    assert call.duration == 65


def test_duration_and_talk_time_are_worked_out_from_the_times() -> None:
    call = _call()
    assert (call.duration, call.talk_time) == (65, 60)


def test_given_duration_and_talk_time_win_over_the_times() -> None:
    call = _call(duration=70, talk_time=62)
    assert (call.duration, call.talk_time) == (70, 62)


def test_talk_time_longer_than_duration_is_refused() -> None:
    assert _errors(duration=30, talk_time=31) == {"talk_time": "is longer than the call's duration"}
    assert _errors(duration=30) == {"talk_time": "is longer than the call's duration"}  # computed talk time 60


def test_talk_time_equal_to_duration_is_accepted() -> None:
    call = _call(duration=60)
    assert (call.duration, call.talk_time) == (60, 60)


def test_no_end_time_means_zero_duration_and_talk_time() -> None:
    call = _call(ended_at=None)
    assert (call.duration, call.ended_at, call.talk_time) == (0, None, 0)


def test_only_a_talk_time_means_the_call_lasted_at_least_that_long() -> None:
    call = _call(ended_at=None, talk_time=90)
    assert (call.duration, call.talk_time) == (90, 90)


# -- agent ----------------------------------------------------------------------------------------------


def test_agent_number_is_an_agent_id() -> None:
    call = _call(agent=17, token_agent_id=3)
    assert (call.agent_id, call.agent_email, call.extension) == (17, None, None)


def test_agent_email_is_lower_cased() -> None:
    call = _call(agent=" Bob@Example.COM ", token_agent_id=3)
    assert (call.agent_id, call.agent_email, call.extension) == (None, "bob@example.com", None)


def test_agent_short_digits_are_an_extension() -> None:
    call = _call(agent="201", token_agent_id=3)
    assert (call.agent_id, call.agent_email, call.extension) == (None, None, "201")


@pytest.mark.parametrize("agent", ["bob", "1", "123456", "+201"])
def test_agent_that_is_no_id_email_or_extension_is_refused(agent: str) -> None:
    assert _errors(agent=agent) == {"agent": "give the agent's id (a number), email or extension (2–5 digits)"}


def test_bad_agent_email_is_refused_on_agent() -> None:
    assert list(_errors(agent="bob@")) == ["agent"]


def test_absent_agent_is_the_tokens_agent() -> None:
    call = _call(token_agent_id=3)
    assert (call.agent_id, call.agent_email, call.extension) == (3, None, None)
    assert _call(token_agent_id=None).agent_id is None


# -- several errors at once -----------------------------------------------------------------------------


def test_every_broken_rule_is_reported_at_once() -> None:
    errors = _errors(
        caller="201",
        started_at=NOW + timedelta(hours=1),
        answered_at=NOW + timedelta(hours=2),
        ended_at=NOW + timedelta(minutes=30),
        agent="bob",
    )
    assert set(errors) == {"caller", "started_at", "ended_at", "answered_at", "agent"}


def test_invalid_input_message_names_each_field() -> None:
    with pytest.raises(InvalidInput) as error:
        _inbound(caller="201", agent="bob")
    assert "caller:" in str(error.value) and "agent:" in str(error.value)


# -- the schema (CallEntry) -----------------------------------------------------------------------------


def _validation_locations(**fields: Any) -> set[str]:
    with pytest.raises(ValidationError) as error:
        _entry(**fields)
    return {str(item["loc"][0]) for item in error.value.errors()}


def test_naive_datetimes_are_refused_by_the_schema() -> None:
    assert _validation_locations(started_at=datetime(2026, 3, 2, 10, 0)) == {"started_at"}
    assert _validation_locations(ended_at="2026-03-02T10:05:00") == {"ended_at"}


def test_unknown_fields_are_refused_by_the_schema() -> None:
    assert _validation_locations(colour="red") == {"colour"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("call_id", ""),
        ("direction", "sideways"),
        ("disposition", "abandoned"),
        ("duration", -1),
        ("talk_time", -5),
        ("recording_url", "ftp://pbx/rec.wav"),
        ("recording_url", "https://pbx/has space.wav"),
    ],
)
def test_schema_refuses_values_outside_its_types(field: str, value: object) -> None:
    assert _validation_locations(**{field: value}) == {field}


def test_schema_accepts_iso_strings_with_offsets_and_strips_text() -> None:
    entry = _entry(started_at="2026-03-02T13:00:00+03:00", call_id="  pbx-9  ", caller=" anonymous ")
    assert entry.started_at == START
    assert (entry.call_id, entry.caller) == ("pbx-9", "anonymous")


def test_boolean_agent_is_not_taken_for_agent_id_one() -> None:
    with pytest.raises(ValidationError):
        _entry(agent=True)


# -- cdr_inbound ----------------------------------------------------------------------------------------

# accountcode,src,dst,dcontext,clid,channel,dstchannel,lastapp,lastdata,start,answer,end,duration,billsec,
# disposition,amaflags,uniqueid,userfield
INBOUND = (
    '"support","84951234567","201","from-pstn","""Ivan Petrov"" <84951234567>","SIP/rt-trunk-01","SIP/201-02",'
    '"Dial","SIP/201,30","2026-03-02 10:00:00","2026-03-02 10:00:07","2026-03-02 10:05:07",307,300,"ANSWERED",'
    '"DOCUMENTATION","1772434800.1",""\n'
)
OUTBOUND = (
    '"support","201","84959876543","from-internal","""Olga (agent)"" <201>","PJSIP/201-0b","PJSIP/rt-trunk-0c",'
    '"Dial","PJSIP/84959876543@rt-trunk,60","2026-03-02 13:00:00","2026-03-02 13:00:10","2026-03-02 13:03:10",'
    '190,180,"ANSWERED","DOCUMENTATION","1772445600.11",""\n'
)
WITHHELD = (
    '"support","anonymous","s","from-pstn","""Anonymous"" <anonymous>","SIP/rt-trunk-09","SIP/201-0a","Dial",'
    '"SIP/201,30","2026-03-02 12:00:00","2026-03-02 12:00:03","2026-03-02 12:01:03",63,60,"ANSWERED",'
    '"DOCUMENTATION","1772442000.9",""\n'
)
VOICEMAIL = (
    '"support","84951234567","s","from-pstn","""Ivan Petrov"" <84951234567>","SIP/rt-trunk-11","","VoiceMail",'
    '"201@default","2026-03-02 14:00:00","2026-03-02 14:00:20","2026-03-02 14:01:00",60,40,"ANSWERED",'
    '"DOCUMENTATION","1772449200.13",""\n'
)
QUEUE_ABANDONED = (
    '"support","84951234567","s","from-pstn","""Ivan Petrov"" <84951234567>","SIP/rt-trunk-13","","Queue",'
    '"support,t","2026-03-02 15:00:00","2026-03-02 15:00:01","2026-03-02 15:02:01",121,120,"ANSWERED",'
    '"DOCUMENTATION","1772452800.15",""\n'
)
QUEUE_NUMBER_ABANDONED = (
    '"support","84951234567","600","ext-queues","""Ivan Petrov"" <84951234567>","SIP/rt-trunk-15","","Queue",'
    '"600,t","2026-03-02 15:10:00","2026-03-02 15:10:01","2026-03-02 15:12:01",121,120,"ANSWERED",'
    '"DOCUMENTATION","1772453400.17",""\n'
)


def _row(line: str) -> CdrRow:
    (row,) = read_cdr([line], default_region="RU")
    assert isinstance(row, CdrRow), row
    return row


def _cdr_call(line: str) -> tuple[Inbound, CallDetails]:
    inbound = cdr_inbound(_row(line))
    assert inbound.call is not None
    return inbound, inbound.call


def test_cdr_inbound_identity_is_the_caller_and_name_comes_from_the_clid() -> None:
    inbound, call = _cdr_call(INBOUND)
    assert inbound.channel == "phone"
    assert inbound.identities == (Identity("phone", "+74951234567"),)
    assert inbound.customer_name == "Ivan Petrov"
    assert inbound.external_id == "1772434800.1"
    assert inbound.body_text == ""
    assert (call.direction, call.disposition, call.source) == ("in", "answered", "cdr")
    assert (call.caller, call.called, call.extension) == ("+74951234567", "201", "201")
    assert call.started_at == datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    assert call.answered_at == datetime(2026, 3, 2, 10, 0, 7, tzinfo=UTC)
    assert (call.duration, call.talk_time) == (307, 300)
    assert call.agent_id is None and call.agent_email is None


def test_cdr_outbound_identity_is_the_called_number_and_caller_is_the_extension() -> None:
    inbound, call = _cdr_call(OUTBOUND)
    assert inbound.identities == (Identity("phone", "+74959876543"),)
    assert inbound.customer_name is None  # "Olga (agent)" is the agent, not the client
    assert (call.direction, call.caller, call.called, call.extension) == ("out", "201", "+74959876543", "201")


def test_cdr_withheld_caller_gives_no_identity() -> None:
    inbound, call = _cdr_call(WITHHELD)
    assert inbound.identities == ()
    assert inbound.customer_name is None
    assert call.caller is None
    assert call.called == "201"  # dst "s" is not a line; the answering extension stands in


def test_cdr_answered_by_voicemail_is_a_voicemail_not_an_answered_call() -> None:
    _, call = _cdr_call(VOICEMAIL)
    assert call.disposition == "voicemail"
    assert call.answered_at is None
    assert call.missed  # nobody spoke to the client: callback work


def test_cdr_caller_hanging_up_in_the_queue_is_a_missed_call() -> None:
    inbound, call = _cdr_call(QUEUE_ABANDONED)
    assert call.disposition == "missed"
    assert call.answered_at is None
    assert call.missed
    assert inbound.identities == (Identity("phone", "+74951234567"),)


def test_cdr_caller_hanging_up_in_a_numbered_queue_is_a_missed_call() -> None:
    _, call = _cdr_call(QUEUE_NUMBER_ABANDONED)
    assert call.disposition == "missed"


# -- merge_legs -----------------------------------------------------------------------------------------


def _leg(record_id: str, disposition: str, line: int, extension: str = "201") -> str:
    answered = disposition == "ANSWERED"
    return (
        f'"support","84951234567","{extension}","from-pstn","Ivan <84951234567>","SIP/trunk-{line}",'
        f'"SIP/{extension}-{line}","Dial","SIP/{extension},30","2026-03-02 10:00:00",'
        f'"{"2026-03-02 10:00:05" if answered else ""}","2026-03-02 10:01:00",60,{55 if answered else 0},'
        f'"{disposition}","DOCUMENTATION","{record_id}",""\n'
    )


def _merged(*lines: str) -> list[CdrRow | CdrRejection]:
    return list(merge_legs(read_cdr(list(lines), default_region="RU")))


def _summary(items: list[CdrRow | CdrRejection]) -> list[tuple[str, str, str | None] | str]:
    return [
        (item.record_id, item.disposition, item.extension) if isinstance(item, CdrRow) else f"rejected@{item.line}"
        for item in items
    ]


def test_ring_group_legs_collapse_to_the_answered_leg() -> None:
    items = _merged(_leg("a.1", "NO ANSWER", 1, "201"), _leg("a.1", "ANSWERED", 2, "202"),
                    _leg("a.1", "NO ANSWER", 3, "203"))
    assert _summary(items) == [("a.1", "answered", "202")]
    assert isinstance(items[0], CdrRow) and items[0].line == 2


def test_ring_group_nobody_answered_keeps_the_first_leg() -> None:
    items = _merged(_leg("a.1", "NO ANSWER", 1, "201"), _leg("a.1", "BUSY", 2, "202"))
    assert _summary(items) == [("a.1", "missed", "201")]


def test_two_answered_legs_keep_the_first_answered_one() -> None:
    items = _merged(_leg("a.1", "ANSWERED", 1, "201"), _leg("a.1", "ANSWERED", 2, "202"))
    assert _summary(items) == [("a.1", "answered", "201")]


def test_different_calls_pass_through_in_order() -> None:
    items = _merged(_leg("a.1", "ANSWERED", 1), _leg("b.2", "NO ANSWER", 2), _leg("c.3", "ANSWERED", 3))
    assert _summary(items) == [("a.1", "answered", "201"), ("b.2", "missed", "201"), ("c.3", "answered", "201")]


def test_rejections_pass_through_in_place() -> None:
    items = _merged(_leg("a.1", "ANSWERED", 1), "not,a,cdr,row\n", _leg("b.2", "ANSWERED", 3))
    assert _summary(items) == [("a.1", "answered", "201"), "rejected@2", ("b.2", "answered", "201")]


def test_non_adjacent_rows_with_the_same_id_are_not_merged() -> None:
    items = _merged(_leg("a.1", "NO ANSWER", 1), _leg("b.2", "ANSWERED", 2), _leg("a.1", "ANSWERED", 3))
    assert _summary(items) == [("a.1", "missed", "201"), ("b.2", "answered", "201"), ("a.1", "answered", "201")]


def test_a_rejection_between_legs_separates_them() -> None:
    items = _merged(_leg("a.1", "NO ANSWER", 1), "broken\n", _leg("a.1", "ANSWERED", 3))
    assert _summary(items) == [("a.1", "missed", "201"), "rejected@2", ("a.1", "answered", "201")]


def test_empty_input_gives_nothing() -> None:
    assert list(merge_legs([])) == []
