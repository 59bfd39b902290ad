"""The `switchboard` command: run the processes, migrate, and manage agents, groups, skills and routing rules."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from pydantic import ValidationError

from switchboard.errors import CliError
from switchboard.roles import prepared_engine, run_roles
from switchboard.settings import Settings
from tickets.language import LANGUAGES

log = logging.getLogger("switchboard")

PRESENCES = ("available", "away", "offline")
PRIORITIES = ("low", "normal", "high", "critical")
CHANNELS = ("email", "webform", "webchat", "telegram", "phone")
"""The channels' `CHANNEL` names, spelled out so the parser imports no channel."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="switchboard", description="Multi-channel contact center and helpdesk.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("serve", help="run everything in one process (web, SMTP, Telegram when a token is set, "
                                      "worker) on the embedded default")
    commands.add_parser("web", help="run the web process (API, web form); needs SWITCHBOARD_REDIS_URL")
    commands.add_parser("smtp", help="run the inbound SMTP server (email channel); needs SWITCHBOARD_REDIS_URL")
    bot = commands.add_parser("bot", help="run the Telegram bot (long polling); needs SWITCHBOARD_TELEGRAM_TOKEN "
                                          "and SWITCHBOARD_REDIS_URL")
    bot.add_argument("--set-webhook", metavar="URL",
                     help="register URL (ending in /telegram/webhook) with Telegram, with the webhook secret, and exit")
    commands.add_parser("pbx", help="follow calls on Asterisk's manager interface (SWITCHBOARD_AMI_URL): pop the "
                                    "caller's card, log each call; needs SWITCHBOARD_REDIS_URL")
    commands.add_parser("worker", help="run an arq worker (deadlines, deliveries); needs SWITCHBOARD_REDIS_URL")
    commands.add_parser("migrate", help="apply database migrations")

    agent = commands.add_parser("agent", help="manage agents") \
        .add_subparsers(dest="action", required=True, metavar="ACTION")
    add_agent = agent.add_parser("add", help="add an agent and print their API token (last line)")
    add_agent.add_argument("name")
    add_agent.add_argument("--email", required=True)
    add_agent.add_argument("--phone")
    add_agent.add_argument("--extension", help="the agent's PBX extension: call logs name agents by it")
    add_agent.add_argument("--role", choices=["agent", "manager", "admin"], default="agent")
    add_agent.add_argument("--group", action="append", dest="groups", metavar="GROUP",
                           help="group (department) to work in; repeat for several (default: the default group)")
    add_agent.add_argument("--capacity", type=int, default=10, help="most open tickets at once (default 10)")
    add_agent.add_argument("--language", choices=["en", "ru"], help="language of the alerts and notices they get")
    add_agent.add_argument("--skill", action="append", dest="skills", default=[], metavar="SKILL",
                           help="skill the agent has (see `switchboard skill list`); repeat for several")
    agent.add_parser("list", help="list agents: presence, open tickets/capacity, load, groups and skills")
    set_agent = agent.add_parser("set", help="change an agent's presence, capacity, skills or groups "
                                             "and print the agent")
    set_agent.add_argument("agent", metavar="AGENT", help="the agent's id or email")
    set_agent.add_argument("--presence", choices=PRESENCES, help="available agents take queued tickets at once; "
                                                                  "offline hands back tickets they have not touched")
    set_agent.add_argument("--capacity", type=int, metavar="N", help="most open tickets at once")
    set_agent.add_argument("--remind-by", choices=("email", "telegram", "sms", "console", "auto"),
                           help="how planned contacts remind the agent besides the console notice (auto: Telegram "
                                "when linked, else email)")
    for flag, dest, what in (("--add-skill", "add_skills", "SKILL"), ("--remove-skill", "remove_skills", "SKILL"),
                             ("--add-group", "add_groups", "GROUP"), ("--remove-group", "remove_groups", "GROUP")):
        set_agent.add_argument(flag, action="append", dest=dest, default=[], metavar=what, help="repeat for several")

    passwd = agent.add_parser("passwd", help="set the agent's console password (asked twice, or read from stdin)")
    passwd.add_argument("agent", metavar="AGENT", help="the agent's id or email")
    passwd.add_argument("--stdin", action="store_true", help="read the password from the first line of stdin")
    link = agent.add_parser("telegram", help="print a code that links the agent's Telegram to the bot, for alerts")
    link.add_argument("agent", metavar="AGENT", help="the agent's id or email")

    calls = commands.add_parser("calls", help="phone calls") \
        .add_subparsers(dest="action", required=True, metavar="ACTION")
    import_calls = calls.add_parser(
        "import", help="import Asterisk cdr-csv files (Master.csv): missed calls become callback tickets; "
                       "safe to re-run")
    import_calls.add_argument("files", nargs="+", metavar="FILE")
    import_calls.add_argument("--region", help="country of numbers written without +code "
                                               "(default SWITCHBOARD_PHONE_REGION)")
    import_calls.add_argument("--timezone", help="time zone of the PBX clock (default SWITCHBOARD_PHONE_TIMEZONE, "
                                                 "else the calendar's)")
    import_calls.add_argument("--rejects", metavar="CSV",
                              help="also write the rejected rows (line, reason, row) to CSV")
    import_calls.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    calls.add_parser("cti-rotate", help="a new token for the Zammad-compatible CTI endpoint; prints the endpoint "
                                        "(the previous token stops working)")

    mail = commands.add_parser("mail", help="outgoing mail") \
        .add_subparsers(dest="action", required=True, metavar="ACTION")
    outbox = mail.add_parser("outbox", help="list the mail written to the sink folder (no relay configured)")
    outbox.add_argument("--show", type=int, metavar="N", help="print message N of the list in full")

    regulations = commands.add_parser("regulations", help="the regulations in effect (SWITCHBOARD_REGULATIONS)") \
        .add_subparsers(dest="action", required=True, metavar="ACTION")
    regulations.add_parser("show", help="check the regulations file and print each regulation's match and ladder")

    notifications = commands.add_parser("notifications", help="the outbox: alerts, replies and notices, any channel") \
        .add_subparsers(dest="action", required=True, metavar="ACTION")
    listed = notifications.add_parser("list", help="list outbox rows, newest first, with their delivery status")
    listed.add_argument("--ticket", type=int, metavar="NUMBER")
    listed.add_argument("--channel", help="email, sms, telegram, webchat")
    listed.add_argument("--status", help="queued, sending, sent, delivered, failed, cancelled")
    listed.add_argument("--limit", type=int, default=50)
    listed.add_argument("--history", action="store_true", help="show every attempt and delivery receipt under each row")

    parked = commands.add_parser("parked", help="what a channel could not store after its retries (kept whole)") \
        .add_subparsers(dest="action", required=True, metavar="ACTION")
    parked_list = parked.add_parser("list", help="parked items, newest first")
    parked_list.add_argument("--channel", help="email, webform, telegram, webchat, phone")
    parked_list.add_argument("--limit", type=int, default=50)
    parked.add_parser("show", help="one parked item whole: its error, then the item as it came") \
        .add_argument("number", type=int)

    group = commands.add_parser("group", help="manage groups") \
        .add_subparsers(dest="action", required=True, metavar="ACTION")
    add_group = group.add_parser("add", help="add a group (department)")
    add_group.add_argument("name")
    add_group.add_argument("--head", metavar="EMAIL", help="head of the department (receives escalation alerts)")
    add_group.add_argument("--no-acknowledge", dest="acknowledge", action="store_false",
                           help="send new email tickets of this group no acknowledgement")
    set_group = group.add_parser("set", help="change a group: its head, whether it acknowledges")
    set_group.add_argument("group", help="id or name")
    head = set_group.add_mutually_exclusive_group()
    head.add_argument("--head", metavar="EMAIL", help="head of the department (receives escalation alerts)")
    head.add_argument("--no-head", action="store_true", help="the group has no head")
    acknowledging = set_group.add_mutually_exclusive_group()
    acknowledging.add_argument("--acknowledge", dest="acknowledge", action="store_true", default=None)
    acknowledging.add_argument("--no-acknowledge", dest="acknowledge", action="store_false")
    group.add_parser("list", help="list groups: head, agents and tickets waiting in the queue")

    skill = commands.add_parser("skill", help="manage skills (what a ticket may require of its agent)").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    add_skill = skill.add_parser("add", help="add a skill: a short name such as ru, billing or product-x")
    add_skill.add_argument("name")
    add_skill.add_argument("--description", metavar="TEXT")
    skill.add_parser("list", help="list skills and how many agents have each")

    activity = commands.add_parser("activity-type", help="the types agents record contacts with clients as") \
        .add_subparsers(dest="action", required=True, metavar="ACTION")
    add_activity = activity.add_parser("add", help="add a type (call, meeting, demonstration, email and visit come "
                                                   "with a new installation)")
    add_activity.add_argument("name")
    activity.add_parser("list", help="list the types")

    outcome = commands.add_parser("outcome", help="how requests can end, and the reasons for a refusal") \
        .add_subparsers(dest="action", required=True, metavar="ACTION")
    add_outcome = outcome.add_parser("add", help="add an outcome (solved, refused, duplicate and no-answer come with "
                                                 "a new installation)")
    add_outcome.add_argument("name")
    add_outcome.add_argument("--needs-reason", action="store_true", help="resolving with it asks for a reason")
    add_reason = outcome.add_parser("reason-add", help="add a reason for a refusal")
    add_reason.add_argument("name")
    outcome.add_parser("list", help="list the outcomes and the reasons")

    canned = commands.add_parser("canned", help="canned responses agents insert into replies").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    add_canned = canned.add_parser("add", help="add one: {name} and {number} are filled in for each ticket")
    add_canned.add_argument("title")
    add_canned.add_argument("--text", required=True, help="the response ('-' reads it from stdin)")
    canned.add_parser("list", help="list canned responses")
    remove_canned = canned.add_parser("remove", help="remove a canned response")
    remove_canned.add_argument("id", type=int)

    rule = commands.add_parser("rule", help="manage routing rules (group, skills, priority and tags of new tickets)") \
        .add_subparsers(dest="action", required=True, metavar="ACTION")
    add_rule = rule.add_parser("add", help="add a rule: new tickets matching every condition given get its effects")
    conditions = add_rule.add_argument_group("conditions (at least one)")
    conditions.add_argument("--channel", choices=CHANNELS)
    conditions.add_argument("--category", help="e.g. question, request, defect, billing, feedback (web form), callback")
    conditions.add_argument("--language", choices=LANGUAGES, help="the client's language (web form: Accept-Language)")
    conditions.add_argument("--from-group", metavar="GROUP", help="the group the channel address placed the ticket in")
    effects = add_rule.add_argument_group("effects (at least one)")
    effects.add_argument("--group", metavar="GROUP", help="send the ticket to this group")
    effects.add_argument("--skill", action="append", dest="skills", default=[], metavar="SKILL",
                         help="require this skill of the agent; repeat for several")
    effects.add_argument("--priority", choices=PRIORITIES)
    effects.add_argument("--tag", action="append", dest="tags", default=[], metavar="TAG",
                         help="tag the ticket (free text, e.g. refund); repeat for several")
    add_rule.add_argument("--position", type=int, metavar="N",
                          help="rules are checked in position order (default: after the last)")
    rule.add_parser("list", help="list routing rules in the order they are checked")
    remove_rule = rule.add_parser("remove", help="remove a routing rule")
    remove_rule.add_argument("id", type=int, metavar="ID")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    # SWITCHBOARD_LOG_LEVEL=DEBUG shows Switchboard's own debug lines (each dispatch batch, for bench/dispatch_lag.py).
    for package in ("channels", "desk", "notifier", "routing", "sla", "switchboard", "tickets"):
        logging.getLogger(package).setLevel(os.environ.get("SWITCHBOARD_LOG_LEVEL", "INFO").upper())
    if args.command != "migrate":
        logging.getLogger("alembic").setLevel(logging.WARNING)
    # aiosmtpd's per-command lines (each MAIL FROM and RCPT TO at INFO) cost the SMTP role 4 % of its CPU under load;
    # what an operator needs of a mail (refused, not stored, stored where) Switchboard logs or stores itself.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    try:
        settings = Settings()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg'].removeprefix('Value error, ')}"
                             for e in exc.errors())
        print(f"switchboard: invalid configuration: {problems}", file=sys.stderr)
        return 2
    commands: dict[str, Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, int]]] = {
        "serve": _serve, "web": _web, "smtp": _smtp, "pbx": _pbx, "worker": _worker, "migrate": _migrate,
        "agent": _agent, "group": _group, "skill": _skill, "canned": _canned, "rule": _rule, "mail": _mail,
        "bot": _bot, "calls": _calls, "activity-type": _activity_type, "outcome": _outcome,
        "notifications": _notifications, "regulations": _regulations, "parked": _parked,
    }
    try:
        return asyncio.run(commands[args.command](settings, args))
    except CliError as exc:
        print(f"switchboard: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


# --- database -------------------------------------------------------------------------------


async def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from sqlalchemy.exc import DBAPIError

    from switchboard.bootstrap import build_engine
    from tickets import migrate

    engine = build_engine(settings)
    try:
        await migrate.upgrade(engine)
        print(f"database at revision {await migrate.current_revision(engine)}")
    except DBAPIError as exc:
        raise CliError(f"cannot migrate {engine.url.render_as_string()}: {exc.orig}") from exc
    finally:
        await engine.dispose()
    return 0


# --- staff ----------------------------------------------------------------------------------


async def _with_service(settings: Settings, work: Callable[[Any], Awaitable[int]]) -> int:
    from switchboard.bootstrap import build_service
    from tickets.clock import SystemClock
    from tickets.errors import DomainError, InvalidInput

    engine = await prepared_engine(settings)
    try:
        return await work(build_service(settings, engine, SystemClock()))
    except InvalidInput as exc:
        raise CliError("; ".join(f"{k}: {v}" for k, v in exc.fields.items())) from exc
    except DomainError as exc:
        raise CliError(str(exc)) from exc
    finally:
        await engine.dispose()


async def _agent(settings: Settings, args: argparse.Namespace) -> int:
    return await {"add": _agent_add, "list": _agent_list, "set": _agent_set, "telegram": _agent_telegram,
            "passwd": _agent_passwd}[args.action](
        settings, args)


async def _agent_add(settings: Settings, args: argparse.Namespace) -> int:
    from tickets.identities import InvalidAddress, email_identity, phone_identity
    from tickets.models import Role
    from tickets.phone_numbers import extension_of

    try:
        email = email_identity(args.email).address
        phone = phone_identity(args.phone, settings.phone_region).address if args.phone else None
    except InvalidAddress as exc:
        raise CliError(str(exc)) from exc
    extension = extension_of(args.extension) if args.extension else None
    if args.extension and extension is None:
        raise CliError(f"--extension: {args.extension!r} is not an extension (2–5 digits)")

    async def work(service: Any) -> int:
        agent, token = await service.add_agent(
            args.name, email, phone=phone, extension=extension, role=Role(args.role), groups=args.groups,
            skills=args.skills, capacity=args.capacity, language=args.language,
        )
        print(f"added agent {agent.id} {agent.name} <{agent.email}> ({agent.role})", file=sys.stderr)
        print("API token (shown once; use it as Authorization: Bearer TOKEN):", file=sys.stderr)
        print(token)
        return 0

    return await _with_service(settings, work)


def _agent_line(view: Any) -> str:
    """One agent as `agent list` and `agent set` print it."""
    agent, load = view.agent, view.load
    return (f"{agent.id:>4}  {agent.name} <{agent.email}>  {agent.role}  {agent.presence}  "
            f"{load.open}/{agent.capacity} open  load {load.weighted:g}  "
            f"groups: {', '.join(view.groups) or '-'}  skills: {', '.join(view.skills) or '-'}")


async def _agent_list(settings: Settings, args: argparse.Namespace) -> int:
    async def work(service: Any) -> int:
        views = await service.list_agents()
        if not views:
            print("no agents yet; add one with `switchboard agent add NAME --email EMAIL`", file=sys.stderr)
        for view in views:
            print(_agent_line(view))
        return 0

    return await _with_service(settings, work)


def _edited(kind: str, current: list[str], add: list[str], remove: list[str]) -> list[str] | None:
    """The agent's new full list of skills or groups, or None when neither flag was given."""
    if not add and not remove:
        return None
    both = sorted(set(add) & set(remove))
    if both:
        raise CliError(f"--add-{kind} and --remove-{kind} both name {', '.join(map(repr, both))}")
    missing = [name for name in remove if name not in current]
    if missing:
        plural = "s" if len(missing) > 1 else ""
        raise CliError(f"--remove-{kind}: the agent has no {kind}{plural} {', '.join(map(repr, missing))} "
                       f"(their {kind}s: {', '.join(current) or 'none'})")
    return [name for name in dict.fromkeys([*current, *add]) if name not in remove]


async def _agent_set(settings: Settings, args: argparse.Namespace) -> int:
    from tickets.actions.staff import AgentChanges
    from tickets.models import Presence

    add_skills = [s.strip().lower() for s in args.add_skills]
    remove_skills = [s.strip().lower() for s in args.remove_skills]
    add_groups = [g.strip() for g in args.add_groups]
    remove_groups = [g.strip() for g in args.remove_groups]
    if args.presence is None and args.capacity is None and args.remind_by is None and not (
        add_skills or remove_skills or add_groups or remove_groups
    ):
        raise CliError("nothing to change: give --presence, --capacity, --remind-by, --add-skill, --remove-skill, "
                       "--add-group or --remove-group")
    if args.capacity is not None and args.capacity < 1:
        raise CliError("--capacity: must be at least 1")

    async def work(service: Any) -> int:
        agent = await service.find_agent(args.agent)
        if args.remind_by is not None:
            await service.set_remind_by(agent.id, args.remind_by)
        current = next(v for v in await service.list_agents() if v.agent.id == agent.id)
        changes = AgentChanges(
            presence=Presence(args.presence) if args.presence else None,
            capacity=args.capacity,
            skills=_edited("skill", current.skills, add_skills, remove_skills),
            groups=_edited("group", current.groups, add_groups, remove_groups),
        )
        print(_agent_line(await service.update_agent(agent.id, changes)))
        return 0

    return await _with_service(settings, work)


async def _agent_passwd(settings: Settings, args: argparse.Namespace) -> int:
    import getpass

    if args.stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("New console password: ")
        if getpass.getpass("Again: ") != password:
            raise CliError("the two passwords differ; nothing changed")

    async def work(service: Any) -> int:
        agent = await service.find_agent(args.agent)
        await service.set_password(agent.id, password)
        print(f"password set for {agent.name} <{agent.email}>; they can sign in at /desk", file=sys.stderr)
        return 0

    return await _with_service(settings, work)


async def _agent_telegram(settings: Settings, args: argparse.Namespace) -> int:
    from tickets.telegram_link import LINK_TTL, link_code

    token = settings.telegram.token
    if not token:
        raise CliError("Telegram is off: set SWITCHBOARD_TELEGRAM_TOKEN (the bot the agent will write to)")

    async def work(service: Any) -> int:
        agent = await service.find_agent(args.agent)
        code, expires = link_code(token, agent.id, service.now())
        print(f"{agent.name}: send this to the bot from your Telegram within {int(LINK_TTL.total_seconds() // 60)} "
              f"minutes (until {expires:%H:%M} UTC); alerts and notices then come to that chat:", file=sys.stderr)
        print(f"/link {code}")
        return 0

    return await _with_service(settings, work)


async def _group(settings: Settings, args: argparse.Namespace) -> int:
    return await {"add": _group_add, "set": _group_set, "list": _group_list}[args.action](settings, args)


async def _group_set(settings: Settings, args: argparse.Namespace) -> int:
    from tickets.identities import InvalidAddress, email_identity

    changes: dict[str, Any] = {}
    try:
        if args.head:
            changes["head_email"] = email_identity(args.head).address
    except InvalidAddress as exc:
        raise CliError(f"--head: {exc}") from exc
    if args.no_head:
        changes["head_email"] = None
    if args.acknowledge is not None:
        changes["acknowledge"] = args.acknowledge
    if not changes:
        raise CliError("nothing to change: give --head EMAIL, --no-head, --acknowledge or --no-acknowledge")

    async def work(service: Any) -> int:
        group = await service.update_group(args.group, changes)
        print(f"group {group.id} {group.name}: head {group.head_email or '-'}, "
              f"{'acknowledges' if group.acknowledge else 'sends no acknowledgement'}")
        return 0

    return await _with_service(settings, work)


async def _group_add(settings: Settings, args: argparse.Namespace) -> int:
    from tickets.identities import InvalidAddress, email_identity

    try:
        head = email_identity(args.head).address if args.head else None
    except InvalidAddress as exc:
        raise CliError(f"--head: {exc}") from exc

    async def work(service: Any) -> int:
        group = await service.add_group(args.name, head, acknowledge=args.acknowledge)
        print(f"added group {group.id} {group.name}" + (f" (head {group.head_email})" if group.head_email else ""))
        return 0

    return await _with_service(settings, work)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


async def _group_list(settings: Settings, args: argparse.Namespace) -> int:
    async def work(service: Any) -> int:
        views = await service.list_groups()
        if not views:
            print("no groups yet; add one with `switchboard group add NAME`", file=sys.stderr)
        for view in views:
            group = view.group
            print(f"{group.id:>4}  {group.name}  head: {group.head_email or '-'}  {_count(view.agents, 'agent')}  "
                  f"{view.waiting} waiting")
        return 0

    return await _with_service(settings, work)


async def _skill(settings: Settings, args: argparse.Namespace) -> int:
    return await {"add": _skill_add, "list": _skill_list}[args.action](settings, args)


def _skill_line(skill: Any, agents: int | None = None) -> str:
    return (skill.name + (f"  {_count(agents, 'agent')}" if agents is not None else "")
            + (f"  {skill.description}" if skill.description else ""))


async def _canned(settings: Settings, args: argparse.Namespace) -> int:
    text = sys.stdin.read() if getattr(args, "text", None) == "-" else getattr(args, "text", None)

    async def work(service: Any) -> int:
        if args.action == "add":
            canned = await service.add_canned(args.title, text or "")
            print(f"added canned response {canned.id} {canned.title!r}")
        elif args.action == "remove":
            await service.remove_canned(args.id)
            print(f"removed canned response {args.id}", file=sys.stderr)
        else:
            responses = await service.list_canned()
            if not responses:
                print("no canned responses yet; add one with `switchboard canned add TITLE --text TEXT`",
                      file=sys.stderr)
            for canned in responses:
                first = canned.body.splitlines()[0][:60] if canned.body else ""
                print(f"{canned.id:>4}  {canned.title}  — {first}")
        return 0

    return await _with_service(settings, work)


async def _skill_add(settings: Settings, args: argparse.Namespace) -> int:
    description = (args.description or "").strip() or None
    if description and len(description) > 300:
        raise CliError("--description: at most 300 characters")

    async def work(service: Any) -> int:
        skill = await service.add_skill(args.name, description)
        print(f"added skill {_skill_line(skill)}")
        return 0

    return await _with_service(settings, work)


async def _activity_type(settings: Settings, args: argparse.Namespace) -> int:
    async def work(service: Any) -> int:
        if args.action == "add":
            print(f"added activity type {(await service.add_activity_type(args.name)).name}")
        else:
            for kind in await service.activity_types():
                print(kind.name)
        return 0

    return await _with_service(settings, work)


async def _outcome(settings: Settings, args: argparse.Namespace) -> int:
    async def work(service: Any) -> int:
        if args.action == "add":
            added = await service.add_outcome(args.name, needs_reason=args.needs_reason)
            print(f"added outcome {added.name}" + (" (asks for a reason)" if added.needs_reason else ""))
        elif args.action == "reason-add":
            print(f"added reason {(await service.add_outcome_reason(args.name)).name}")
        else:
            known = await service.outcomes()
            for found in known.outcomes:
                print(found.name + ("  (asks for a reason)" if found.needs_reason else ""))
            print("reasons: " + ", ".join(r.name for r in known.reasons))
        return 0

    return await _with_service(settings, work)


async def _skill_list(settings: Settings, args: argparse.Namespace) -> int:
    async def work(service: Any) -> int:
        views = await service.list_skills()
        if not views:
            print("no skills yet; add one with `switchboard skill add NAME`", file=sys.stderr)
        for view in views:
            print(_skill_line(view.skill, view.agents))
        return 0

    return await _with_service(settings, work)


async def _rule(settings: Settings, args: argparse.Namespace) -> int:
    return await {"add": _rule_add, "list": _rule_list, "remove": _rule_remove}[args.action](settings, args)


def _rule_line(view: Any) -> str:
    """A rule as its flags would give it: `#3  position 10  when language=ru  then skills=ru priority=high`."""
    rule = view.rule
    when = [f"{name}={value}" for name, value in (("channel", rule.channel), ("category", rule.category),
                                                   ("language", rule.language), ("from-group", view.from_group))
            if value]
    then = [f"{name}={value}" for name, value in (("group", view.group), ("skills", rule.skills),
                                                   ("priority", rule.priority), ("tags", rule.tags)) if value]
    return f"#{rule.id}  position {rule.position}  when {' '.join(when)}  then {' '.join(then)}"


async def _rule_add(settings: Settings, args: argparse.Namespace) -> int:
    from tickets.models import Priority

    if args.category is not None and len(args.category.strip()) > 64:
        raise CliError("--category: at most 64 characters")

    async def work(service: Any) -> int:
        view = await service.add_rule(
            channel=args.channel, category=args.category, language=args.language, from_group=args.from_group,
            group=args.group, skills=args.skills, priority=Priority(args.priority) if args.priority else None,
            tags=args.tags, position=args.position,
        )
        print(f"added rule {_rule_line(view)}")
        return 0

    return await _with_service(settings, work)


async def _rule_list(settings: Settings, args: argparse.Namespace) -> int:
    async def work(service: Any) -> int:
        views = await service.list_rules()
        if not views:
            print("no routing rules; add one with `switchboard rule add`", file=sys.stderr)
        for view in views:
            print(_rule_line(view))
        return 0

    return await _with_service(settings, work)


async def _rule_remove(settings: Settings, args: argparse.Namespace) -> int:
    async def work(service: Any) -> int:
        await service.remove_rule(args.id)
        print(f"removed rule #{args.id}")
        return 0

    return await _with_service(settings, work)


async def _calls(settings: Settings, args: argparse.Namespace) -> int:
    from switchboard.calls_import import run_import

    if args.action == "cti-rotate":
        async def rotate(service: Any) -> int:
            token = await service.rotate_cti_token()
            print(f"{settings.public_url}/api/v1/cti/{token}")
            print("Give this endpoint to the PBX (Zammad's generic CTI: newCall, answer, hangup); "
                  "the previous one no longer works.", file=sys.stderr)
            return 0

        return await _with_service(settings, rotate)
    return await _with_service(settings, lambda service: run_import(settings, service, args))


async def _mail(settings: Settings, args: argparse.Namespace) -> int:
    from notifier.senders import list_sink

    sink = settings.data_dir / "mail-sink"
    entries = await asyncio.to_thread(list_sink, sink)
    if args.show is not None:
        if not 1 <= args.show <= len(entries):
            raise CliError(f"--show takes 1 to {len(entries)}" if entries else f"no mail in {sink}")
        sys.stdout.write((await asyncio.to_thread(entries[args.show - 1].path.read_bytes)).decode("utf-8", "replace"))
        return 0
    if settings.smtp.relay_url:
        print(f"mail goes to the relay {settings.smtp.relay_url.split('@')[-1]}; the sink below holds only older mail",
              file=sys.stderr)
    if not entries:
        print(f"no mail in {sink}", file=sys.stderr)
        return 0
    for number, entry in enumerate(entries, 1):
        when = entry.date.strftime("%Y-%m-%d %H:%M") if entry.date else "?"
        print(f"{number:>4}  {when}  to {entry.to}  {entry.subject}  ({entry.path.name})")
    return 0


async def _regulations(settings: Settings, args: argparse.Namespace) -> int:
    from sla.describe import describe_book

    print(describe_book(settings.regulation_book()))
    return 0


async def _parked(settings: Settings, args: argparse.Namespace) -> int:
    async def work(service: Any) -> int:
        if args.action == "show":
            item = await service.parked_item(args.number)
            print(f"parked item {item.id}  {item.channel}  {item.reference or '-'}  {item.created_at:%Y-%m-%d %H:%M:%S}"
                  f"  after {item.attempts} attempts")
            print(f"error: {item.error}")
            if item.raw:
                print(f"kept as {settings.attachments_dir / item.raw['path']}")
            if item.payload is not None:
                print(item.payload)
            return 0
        found = await service.parked(limit=args.limit, channel=args.channel)
        if not found:
            print("nothing parked", file=sys.stderr)
        for item in found:
            print(f"{item.id:>6}  {item.created_at:%Y-%m-%d %H:%M:%S}  {item.channel:<8} {item.reference or '-'}  "
                  f"{item.error.splitlines()[0][:100] if item.error else ''}")
        return 0

    return await _with_service(settings, work)


async def _notifications(settings: Settings, args: argparse.Namespace) -> int:
    from notifier.history import notifications
    from tickets.db import create_session_factory
    from tickets.models import OutboxStatus

    try:
        status = OutboxStatus(args.status) if args.status else None
    except ValueError:
        raise CliError(f"--status: one of {', '.join(OutboxStatus)}") from None
    engine = await prepared_engine(settings)
    try:
        async with create_session_factory(engine)() as session:
            found = await notifications(session, ticket=args.ticket, channel=args.channel, status=status,
                                        limit=args.limit)
    finally:
        await engine.dispose()
    if not found:
        print("no notifications", file=sys.stderr)
    for item in found:
        row = item.row
        about = (row.subject or row.body_text or "").splitlines()[0][:80] if (row.subject or row.body_text) else ""
        ticket = f"#{row.ticket_id}" if row.ticket_id else "-"
        where = f"  [{row.provider_id}]" if row.provider_id else ""
        print(f"{row.id:>6}  {row.created_at:%Y-%m-%d %H:%M:%S}  {row.channel:<8} {row.status:<9} {ticket:>7}  "
              f"{row.kind}  to {row.recipient}  {about}{where}")
        if row.last_error and not args.history:
            print(f"{'':8}{row.last_error}")
        for attempt in item.attempts if args.history else ():
            error = f": {attempt.error}" if attempt.error else ""
            print(f"{'':8}{attempt.at:%Y-%m-%d %H:%M:%S}  attempt {attempt.attempt}  {attempt.outcome}{error}")
    return 0


# --- processes (assembled in switchboard/roles.py) -------------------------------------------


async def _serve(settings: Settings, args: argparse.Namespace) -> int:
    return await run_roles(settings, web_role=True, worker_role=True, smtp_role=True, embedded_redis=True,
                            telegram_role=bool(settings.telegram.token), pbx_role=bool(settings.ami_url))


async def _pbx(settings: Settings, args: argparse.Namespace) -> int:
    if not settings.ami_url:
        raise CliError("set SWITCHBOARD_AMI_URL to ami://USER:SECRET@HOST:5038, the user and secret of a manager.conf "
                       "section that may read call events")
    return await run_roles(settings, web_role=False, worker_role=False, embedded_redis=False, pbx_role=True)


async def _bot(settings: Settings, args: argparse.Namespace) -> int:
    if not settings.telegram.token:
        raise CliError("set SWITCHBOARD_TELEGRAM_TOKEN to the bot's token (from @BotFather)")
    if args.set_webhook:
        return await _set_webhook(settings, args.set_webhook)
    return await run_roles(settings, web_role=False, worker_role=False, embedded_redis=False, telegram_role=True)


async def _set_webhook(settings: Settings, url: str) -> int:
    from aiogram.exceptions import TelegramAPIError

    from channels.chat.telegram.bot import create_bot, webhook_secret
    from channels.chat.telegram.updates import ALLOWED_UPDATES

    bot = create_bot(settings.telegram)
    try:
        await bot.set_webhook(url, secret_token=webhook_secret(settings.telegram), allowed_updates=ALLOWED_UPDATES)
    except TelegramAPIError as exc:
        raise CliError(f"Telegram refused the webhook {url}: {exc.message}") from exc
    finally:
        await bot.session.close()
    print(f"webhook set: Telegram now posts updates to {url}; run `switchboard web` (or serve) to receive them")
    return 0


async def _smtp(settings: Settings, args: argparse.Namespace) -> int:
    return await run_roles(settings, web_role=False, worker_role=False, smtp_role=True, embedded_redis=False)


async def _web(settings: Settings, args: argparse.Namespace) -> int:
    return await run_roles(settings, web_role=True, worker_role=False, embedded_redis=False)


async def _worker(settings: Settings, args: argparse.Namespace) -> int:
    if settings.notifier.worker_niceness:
        os.nice(settings.notifier.worker_niceness)
    return await run_roles(settings, web_role=False, worker_role=True, embedded_redis=False)


if __name__ == "__main__":
    raise SystemExit(main())
