"""The regulations in words, as `switchboard regulations show` prints them: what a manager checks a file against."""

from __future__ import annotations

from sla.regulations import Match, Regulation, RegulationBook, Span, Step

_UNLESS = {"processed": "processed", "resolved": "resolved", "replied": "answered"}


def describe_book(book: RegulationBook) -> str:
    lines = [f"regulations from {book.source}; a ticket gets the first that matches:"]
    for regulation in book.regulations:
        lines.append(describe_regulation(regulation))
    for name, contact in book.contacts.items():
        lines.append(f"contact {name}: {', '.join(filter(None, (contact.email, contact.phone)))}")
    return "\n".join(lines)


def describe_regulation(regulation: Regulation) -> str:
    time = f"business time of calendar {regulation.calendar_name}" if regulation.business_time else "clock time"
    lines = [f"\n{regulation.name} (version {regulation.version}): {_match(regulation.match)}; {time}"]
    for number, step in enumerate(regulation.steps, 1):
        lines.append(f"  {number}. {step.name} [{step.kind}]: {_when(step)} unless {_UNLESS[step.unless]} → "
                     f"{_actions(step)}")
    return "\n".join(lines)


def _match(match: Match) -> str:
    parts = [f"{field} {'/'.join(sorted(values))}" for field in ("category", "priority", "channel", "group", "tier")
             if (values := getattr(match, field))]
    return "tickets with " + ", ".join(parts) if parts else "every ticket"


def _span(span: Span) -> str:
    parts = []
    if span.days:
        parts.append(f"{span.days:g} day{'s' if span.days != 1 else ''}")
    if span.seconds:
        seconds = span.seconds
        parts.append(f"{seconds / 3600:g} h" if seconds % 3600 == 0 else f"{seconds / 60:g} min" if seconds % 60 == 0
                     else f"{seconds:g} s")
    return " ".join(parts)


def _when(step: Step) -> str:
    since = {"creation": "registration", "previous": "the step before", "client_message": "the client's message"}
    if step.end_of_day is not None:
        return f"at the end of business day {step.end_of_day}"
    assert step.after is not None
    clock = f" ({step.time} time)" if step.time else ""
    return f"{_span(step.after)}{clock} after {since[step.since]}"


def _actions(step: Step) -> str:
    done = []
    if step.reassign:
        done.append("reassign to the least-loaded other agent")
    if step.raise_priority:
        done.append(f"raise priority {'one level' if step.raise_priority == 'up' else 'to ' + step.raise_priority}")
    if step.breach:
        done.append("breached")
    for notify in step.notify:
        done.append(f"notify {', '.join(notify.to)} by {' and '.join(notify.by)}")
    return "; ".join(done)
