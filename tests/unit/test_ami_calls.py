"""How AMI channel events read as call events: who rings, who answered, why it ended; and the AMI URL."""

from __future__ import annotations

import pytest

from channels.phone.ami import AmiCalls, AmiTarget, parse_ami_url
from tickets.actions.live_calls import CallEvent

TRUNK = {"channel": "PJSIP/trunk-00000001", "calleridnum": "+442079460958", "uniqueid": "17.1", "linkedid": "17.1"}


def dial(dest: str, **fields: str) -> dict[str, str]:
    return {"event": "DialBegin", **TRUNK, "destchannel": dest, **fields}


def test_a_call_from_a_trunk_rings_the_extensions_dialled_and_is_answered_and_ended_once() -> None:
    calls = AmiCalls("GB")
    ring = calls.read(dial("PJSIP/201-00000002", exten="201", dialstring="201"))
    assert ring == CallEvent(call_id="17.1", kind="ring", direction="in", caller="+442079460958", called="201",
                             client_number="+442079460958", extensions=("201",), source="ami")
    group = calls.read(dial("Local/202@from-queue-00000003;1"))
    assert group is not None and (group.kind, group.extensions) == ("ring", ("202",))
    answer = calls.read({"event": "DialEnd", **TRUNK, "destchannel": "PJSIP/202-00000004", "dialstatus": "ANSWER"})
    assert answer is not None and (answer.kind, answer.answering) == ("answer", "202")
    assert calls.read({"event": "DialEnd", **TRUNK, "destchannel": "PJSIP/202-4", "dialstatus": "ANSWER"}) is None
    assert calls.read({"event": "Hangup", "channel": "PJSIP/202-4", "uniqueid": "17.4", "linkedid": "17.1",
                       "cause": "16"}) is None  # a phone's leg; the call goes on until its first channel ends
    ended = calls.read({"event": "Hangup", **TRUNK, "cause": "16"})
    assert ended is not None and (ended.kind, ended.cause) == ("hangup", "normalClearing")
    assert calls.read({"event": "Hangup", **TRUNK, "cause": "16"}) is None  # told once


def test_an_agent_dialling_out_is_an_outbound_call_to_the_client() -> None:
    calls = AmiCalls("GB")
    ring = calls.read({"event": "DialBegin", "channel": "PJSIP/201-00000009", "calleridnum": "201",
                       "exten": "02079460958", "uniqueid": "18.1", "linkedid": "18.1",
                       "destchannel": "PJSIP/trunk-0000000a", "dialstring": "trunk/02079460958"})
    assert ring is not None and (ring.direction, ring.caller, ring.client_number, ring.extensions) == (
        "out", "201", "+442079460958", ("201",))
    answer = calls.read({"event": "DialEnd", "channel": "PJSIP/201-00000009", "uniqueid": "18.1", "linkedid": "18.1",
                         "destchannel": "PJSIP/trunk-0000000a", "dialstatus": "ANSWER"})
    assert answer is not None and answer.answering == "201"
    busy = calls.read({"event": "Hangup", "channel": "PJSIP/201-00000009", "uniqueid": "18.1", "linkedid": "18.1",
                       "cause": "17"})
    assert busy is not None and busy.cause == "busy"


def test_internal_calls_and_calls_never_seen_ringing_are_not_followed() -> None:
    calls = AmiCalls(None)
    assert calls.read({"event": "DialBegin", "channel": "PJSIP/201-1", "calleridnum": "201", "uniqueid": "19.1",
                       "linkedid": "19.1", "destchannel": "PJSIP/202-2"}) is None
    assert calls.read({"event": "Hangup", "channel": "PJSIP/trunk-9", "uniqueid": "20.1", "linkedid": "20.1"}) is None
    assert calls.read({"event": "Newchannel", **TRUNK}) is None
    assert calls.read({"event": "DialBegin", "destchannel": "PJSIP/201-1"}) is None  # no ids at all


def test_a_withheld_number_rings_as_an_unknown_caller() -> None:
    ring = AmiCalls("GB").read(dial("PJSIP/201-2", calleridnum="anonymous"))
    assert ring is not None and (ring.caller, ring.client_number) == (None, None)


def test_the_ami_url_names_the_manager_user_and_is_refused_in_words_otherwise() -> None:
    assert parse_ami_url("ami://switchboard:s%40cret@pbx.example.org") == AmiTarget(
        "pbx.example.org", 5038, "switchboard", "s@cret")
    target = parse_ami_url("amis://u:p@10.0.0.5:5039")
    assert (target.port, target.tls, str(target)) == (5039, True, "amis://u@10.0.0.5:5039")  # no secret in logs
    for url, words in [("http://u:p@pbx", "scheme"), ("ami://pbx:5038", "USER:SECRET"),
                       ("ami://u:p@pbx:notaport", "port")]:
        with pytest.raises(ValueError, match=words):
            parse_ami_url(url)


def test_asterisk_18s_whole_sequence_is_one_ring_one_answer_one_end() -> None:
    """What Asterisk really sends for one call: the phone's ringing and answer are told more than once."""
    calls = AmiCalls("GB")
    phone = {"channel": "PJSIP/201-00000002", "uniqueid": "17.2", "linkedid": "17.1",
             "connectedlinenum": "+442079460958"}
    sequence = [
        {"event": "Newchannel", **TRUNK, "channelstate": "4"},
        dial("PJSIP/201-00000002"),
        {"event": "Newchannel", **phone, "channelstate": "0"},
        {"event": "Newstate", **phone, "channelstate": "5"},  # Ringing: told already by DialBegin
        {"event": "DialEnd", **TRUNK, "destchannel": "PJSIP/201-00000002", "dialstatus": "ANSWER"},
        {"event": "Newstate", **phone, "channelstate": "6"},  # Up: answered already
        {"event": "BridgeEnter", **phone},
        {"event": "BridgeEnter", **TRUNK},
        {"event": "Hangup", **phone, "cause": "16"},
        {"event": "Hangup", **TRUNK, "cause": "16"},
    ]
    told = [(e.kind, e.extensions, e.answering) for e in map(calls.read, sequence) if e is not None]
    assert told == [("ring", ("201",), None), ("answer", (), "201"), ("hangup", (), None)]


def test_a_pbx_that_reports_only_channel_states_is_read_too() -> None:
    """No DialBegin: the extension's channel rings (the caller is its connected line) and goes up."""
    calls = AmiCalls("GB")
    phone = {"channel": "SIP/202-0000001b", "uniqueid": "30.2", "linkedid": "30.1"}
    ring = calls.read({"event": "Newstate", **phone, "channelstate": "5", "connectedlinenum": "02079460958"})
    assert ring is not None and (ring.call_id, ring.client_number, ring.extensions) == (
        "30.1", "+442079460958", ("202",))
    answer = calls.read({"event": "Newstate", **phone, "channelstatedesc": "Up"})  # the words alone will do
    assert answer is not None and answer.answering == "202"
    ended = calls.read({"event": "Hangup", "channel": "SIP/trunk-1a", "uniqueid": "30.1", "linkedid": "30.1",
                        "cause": "16"})
    assert ended is not None and ended.kind == "hangup"
    assert calls.read({"event": "Newstate", "channel": "SIP/203-1c", "uniqueid": "31.2", "linkedid": "31.1",
                       "channelstate": "5", "connectedlinenum": "204"}) is None  # a colleague calling


def test_asterisk_11_dial_events_and_a_queue_member_taking_the_call() -> None:
    calls = AmiCalls("GB")
    ring = calls.read({"event": "Dial", "subevent": "Begin", "channel": "SIP/trunk-00000001",
                       "destination": "SIP/201-00000002", "calleridnum": "+442079460958", "uniqueid": "40.1",
                       "destuniqueid": "40.2"})
    assert ring is not None and (ring.call_id, ring.extensions) == ("40.1", ("201",))
    answer = calls.read({"event": "Dial", "subevent": "End", "channel": "SIP/trunk-00000001", "uniqueid": "40.1",
                         "destination": "SIP/201-00000002", "dialstatus": "ANSWER"})
    assert answer is not None and answer.answering == "201"

    queued = AmiCalls("GB")
    queued.read(dial("Local/201@from-queue-00000003;1"))
    queued.read(dial("Local/202@from-queue-00000004;1"))
    taken = queued.read({"event": "AgentConnect", **TRUNK, "destchannel": "", "interface": "PJSIP/202",
                         "membername": "Bob"})
    assert taken is not None and (taken.kind, taken.answering) == ("answer", "202")
