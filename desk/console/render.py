"""Rendering console pages (`web.pages`) in the agent's language: their setting, else the browser's."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from desk.console.values import VALUES
from notifier.alerts import waited
from web.pages import Pages, reader_language

if TYPE_CHECKING:
    from desk.console.auth import Signed

WORDS: dict[str, dict[str, str]] = {
    "en": {
        "sections": "Sections", "search_hint": "Number, name, address or words", "views": "Views",
        "filters": "Filters", "filtered": "filtered", "any_open": "any open", "anyone": "anyone", "me": "me",
        "group": "Group", "any_group": "every group", "since": "Created from", "until": "to", "clear": "Clear",
        "bulk": "Change the chosen tickets", "bulk_hint": "Tick tickets to change several at once.",
        "pick_all": "Choose every ticket on the page", "pick": "Choose", "apply": "Apply to the chosen",
        "client_replied": "client replied", "bulk_done": "Changed: {changed}. Refused: {refused}.",
        "bulk_nothing": "Choose tickets and what to change.", "chosen": "chosen",
        "forbidden_title": "Not for your role", "only_managers": "The dashboard and these pages are for managers.",
        "only_admins": "Only admins change these settings.",
        "period": "Period", "last_n_days": "{n} days", "client_comments": "What clients said",
        "rating": "Client's rating",
        "view_name": "Name this view", "save_view": "Save as my view", "remove_view": "Remove the view",
        "view_saved": "Saved: it is in your views above.",
        "view_refused": "Not saved: give the view a name (at most 30 views).",
        "chart_tags": "Tickets by tag", "attach": "Files", "attach_goes_email": "(they go with the reply, by email)",
        "pages": "Pages", "newest": "← Newest", "older_tickets": "Older tickets →",
        "page_note": "A page holds the {n} newest matching tickets, sorted among themselves.",
        "attach_goes_telegram": "(they go to the chat after the text)",
        "attach_goes_webchat": "(the chat shows them as links to download)",
        "attach_elsewhere": "(the client downloads them from their portal link)",
        "tag": "Tag", "any_tag": "any tag", "tags": "Tags", "tags_hint": "Separated by commas.",
        "settings_view": "Team and settings", "read_only": "You can read these; admins change them.",
        "any_status": "any status", "older": "Older",
        "system_events": "System events: {n}", "ticket": "Ticket", "recording": "recording",
        "goes_email": "A reply goes by email to {address}; the client also sees it in their portal.",
        "goes_nowhere": "The client left no email address: a reply shows only in their portal link.",
        "goes_telegram": "A reply goes to the client's Telegram chat.",
        "goes_webchat": "A reply goes to the web chat (by email too if the visitor left an address and is away).",
        "goes_portal": "A reply shows in the client's portal link; this channel carries no replies.",
        "return_hint": "Nobody will hold the ticket: it goes back to its group's queue.",
        "viewing": "Also here: {names}.", "typing_now": "{names} is typing a reply…",
        "changed_elsewhere": "This ticket changed: the page shows the new state.",
        "title": "Switchboard", "sign_in": "Sign in", "email": "Email", "password": "Password",
        "bad_login": "Wrong email or password.", "expired": "The sign-in form expired: please sign in again.",
        "too_many": "Too many attempts: wait a few minutes.",
        "sign_out": "Sign out", "mine": "Mine", "unassigned": "Unassigned", "all_open": "All open",
        "overdue": "Overdue", "escalated": "Escalated", "escalated_badge": "escalated to the head", "number": "#",
        "subject": "Subject", "customer": "Customer", "channel": "Channel",
        "priority": "Priority", "status": "Status", "waiting": "Waiting", "next_step": "Next deadline",
        "nothing": "Nothing here.", "breached": "breached", "late": "late", "in": "in", "reply": "Reply",
        "note": "Internal note", "send": "Send", "save": "Save", "take": "Take it", "return": "Unassign",
        "presence": "Presence", "available": "available", "away": "away", "offline": "offline",
        "assignee": "Assignee", "nobody": "nobody", "history": "History", "deadlines": "Deadlines",
        "identities": "Identities", "events": "Events", "search": "Search", "internal": "internal",
        "queue": "Queue", "done_reply": "Reply queued for delivery.", "done_note": "Note added.",
        "done_saved": "Saved.", "done_taken": "The ticket is yours.", "done_returned": "Returned to the queue.",
        "dir_in": "Client", "dir_out": "Agent", "dir_internal": "Internal note",
        "dashboard": "Dashboard", "last_days": "The last 14 days", "open": "open", "free": "free",
        "in_time": "in time", "tickets": "tickets", "not_due": "not yet due",
        "chart_load": "Load per agent (open and waiting for the client / capacity)",
        "chart_queues": "Waiting in each group's queue", "chart_compliance": "Regulation steps kept in time",
        "chart_first_response": "Time to the first answer", "chart_resolution": "Time to resolution",
        "chart_channels": "New tickets per day, by channel", "chart_satisfaction": "Client satisfaction",
        "canned": "Insert a canned response", "canned_title": "Title", "canned_text": "Text",
        "canned_add": "Add", "canned_hint": "{name} and {number} are filled in for each ticket.", "remove": "Remove",
        "call_pop": "Call", "close": "Close", "callstate_ringing": "ringing", "callstate_answered": "in progress",
        "callstate_ended": "ended", "withheld": "withheld number", "call_taken_by": "Taken by",
        "call_rings_for": "Rings for", "no_name": "(no name)", "open_tickets": "Open tickets",
        "call_on_ticket": "this call goes here", "call_attach": "The call is about this",
        "nothing_open": "Nothing open.", "call_hidden_open": "{n} more open in queues you do not see.",
        "last_contacts": "Last contacts", "no_contacts": "No earlier contacts.",
        "unknown_number": "Unknown number.", "call_client_name": "Name", "call_new_card": "Create a card",
        "call_card_number": "Card no.", "call_link_card": "Add the number to that card",
        "withheld_hint": "The caller withheld their number: the call is logged, nobody can be called back.",
        "unreadable_hint": "This number is not one Switchboard can read as a phone number (national numbers need "
                           "SWITCHBOARD_PHONE_REGION): the call is logged on no card.",
        "call_new_ticket": "Open a ticket for this call", "call_ended": "The call ended",
        "call_logged": "logged", "calls_now": "Ringing and in progress", "call_since": "For",
        "call_direction": "Direction", "call_party": "Client", "call_state": "State", "call_agents": "Agents",
        "calls_none_now": "No call is ringing or in progress.", "calls_today": "Today",
        "call_started": "Started", "call_outcome": "Outcome", "calls_none_today": "No calls today yet.",
        "other_tickets": "Their other tickets", "calls": "Calls", "category": "Category", "transfer": "Give to",
        "answers": "answers", "admin": "Administration", "agents": "Agents", "groups": "Groups", "skills": "Skills",
        "addresses": "Support addresses", "regulations": "Regulations", "notifications": "Notifications",
        "name": "Name", "role": "Role", "head": "Head", "recipient": "To",
        "admin_cli": "Changes are made with the command line or the API",
        "any_address": "Any address is accepted into the default group (SWITCHBOARD_SMTP_ADDRESSES is unset).",
        "check_regulations": "Check a regulations file (YAML) before you deploy it", "check": "Check",
        "regulations_ok": "The file is valid. It would mean:",
        "met": "met", "fired": "fired", "pending": "pending", "cancelled": "cancelled", "paused": "paused",
        "linked": "Linked tickets", "link": "Link", "merge": "Merge into it", "unlink": "Unlink",
        "link_or_merge": "Link or merge with their ticket", "done_linked": "Linked.", "done_unlinked": "Unlinked.",
        "done_merged": "Merged: the other ticket's history is here now and it is closed.",
        "done_recorded": "The contact is recorded.", "record_contact": "Record a contact",
        "history_types": "Show", "history_all": "Everything", "history_message": "Messages",
        "history_call": "Calls", "older_contacts": "Older contacts →", "their_tickets": "Tickets",
        "remind_me_by": "Remind me of planned contacts", "remind_auto": "by Telegram if linked, else by email",
        "remind_email": "by email", "remind_telegram": "by Telegram", "remind_sms": "by SMS",
        "remind_console": "only here in the console",
        "late_plans": "Planned contacts overdue", "no_late_plans": "No planned contact is overdue.",
        "activity_type": "Type", "activity_outcome": "Outcome", "activity_note": "Note",
        "next_contact_at": "Next contact (your time)", "next_contact_what": "What for", "record": "Record",
        "planned_contacts": "Planned with this client", "my_plan": "My plan for today",
        "plan_overdue": "overdue", "reminder": "Reminder", "outcome": "Outcome",
        "outcome_hint": "(resolving asks for it)", "outcome_reason": "Reason of a refusal",
        "chart_outcomes": "How requests ended (share of those resolved)", "chart_activities": "Contacts recorded",
        "contacts": "contacts", "contacts_recorded": "Contacts recorded", "indicators": "Indicators by agent",
        "stale_days": "Protracted after, days",
        "in_work_band": "Band for tickets in work",
        "indicators_hint": "Highlighted: tickets in work outside the band, overdue planned contacts, tickets with "
                           "nothing done for {days} days or more.",
        "merged_into": "This ticket was merged into", "merged_from": "Merged into this one:",
        "confirm_merge": "Merge this ticket into the chosen one and close it?",
        "any_channel": "every channel", "any_priority": "any priority", "filter": "Filter",
        "shortcuts": "Keys: / search · j k move · x tick · Enter open · r write · Ctrl+Enter send · q queue",
        "parked": "Parked items", "reference": "Reference", "attempts": "Attempts", "error": "Error", "when": "When",
        "parked_hint": "What a channel could not store after its retries, kept whole: switchboard parked show N.",
    },
    "ru": {
        "sections": "Разделы", "search_hint": "Номер, имя, адрес или слова", "views": "Представления",
        "filters": "Фильтры", "filtered": "отобрано", "any_open": "любые открытые", "anyone": "любой", "me": "я",
        "group": "Группа", "any_group": "все группы", "since": "Созданы с", "until": "по", "clear": "Сбросить",
        "bulk": "Изменить выбранные заявки", "bulk_hint": "Отметьте заявки, чтобы изменить несколько сразу.",
        "pick_all": "Выбрать все заявки на странице", "pick": "Выбрать", "apply": "Применить к выбранным",
        "client_replied": "клиент ответил", "bulk_done": "Изменено: {changed}. Отказано: {refused}.",
        "bulk_nothing": "Выберите заявки и что изменить.", "chosen": "выбрано",
        "forbidden_title": "Недоступно для вашей роли",
        "only_managers": "Сводка и эти страницы — для руководителей.",
        "only_admins": "Эти настройки меняют только администраторы.",
        "period": "Период", "last_n_days": "{n} дн.", "client_comments": "Что сказали клиенты",
        "rating": "Оценка клиента",
        "view_name": "Название", "save_view": "Сохранить как моё представление",
        "remove_view": "Удалить представление", "view_saved": "Сохранено: оно среди ваших представлений выше.",
        "view_refused": "Не сохранено: дайте название (не больше 30 представлений).",
        "chart_tags": "Заявки по меткам", "attach": "Файлы", "attach_goes_email": "(уйдут вместе с ответом, письмом)",
        "pages": "Страницы", "newest": "← Самые новые", "older_tickets": "Более ранние заявки →",
        "page_note": "На странице {n} самых новых подходящих заявок, упорядоченных между собой.",
        "attach_goes_telegram": "(уйдут в чат следом за текстом)",
        "attach_goes_webchat": "(чат покажет их ссылками для скачивания)",
        "attach_elsewhere": "(клиент скачает их со своей страницы заявки)",
        "tag": "Метка", "any_tag": "любая метка", "tags": "Метки", "tags_hint": "Через запятую.",
        "settings_view": "Команда и настройки", "read_only": "Вы можете это читать; меняют администраторы.",
        "any_status": "любой статус", "older": "Раньше",
        "system_events": "Системных событий: {n}", "ticket": "Заявка", "recording": "запись",
        "goes_email": "Ответ уйдёт письмом на {address}; клиент увидит его и на своей странице заявки.",
        "goes_nowhere": "Клиент не оставил почту: ответ будет виден только на его странице заявки.",
        "goes_telegram": "Ответ уйдёт клиенту в Telegram.",
        "goes_webchat": "Ответ уйдёт в веб-чат (и письмом, если посетитель оставил адрес и ушёл).",
        "goes_portal": "Ответ будет виден на странице заявки клиента: этот канал ответы не доставляет.",
        "return_hint": "Заявка ни за кем не останется: она вернётся в очередь своей группы.",
        "viewing": "Здесь же: {names}.", "typing_now": "{names} пишет ответ…",
        "changed_elsewhere": "Заявка изменилась: на странице её новое состояние.",
        "title": "Switchboard", "sign_in": "Войти", "email": "Почта", "password": "Пароль",
        "bad_login": "Неверная почта или пароль.", "expired": "Форма входа устарела: войдите ещё раз.",
        "too_many": "Слишком много попыток: подождите несколько минут.",
        "sign_out": "Выйти", "mine": "Мои", "unassigned": "Без исполнителя", "all_open": "Все открытые",
        "overdue": "Просроченные", "escalated": "Эскалированные", "escalated_badge": "передана руководителю",
        "number": "№", "subject": "Тема", "customer": "Клиент", "channel": "Канал",
        "priority": "Приоритет", "status": "Статус", "waiting": "Ждёт", "next_step": "Ближайший срок",
        "nothing": "Здесь пусто.", "breached": "нарушен", "late": "просрочен", "in": "через", "reply": "Ответ",
        "note": "Внутренняя заметка", "send": "Отправить", "save": "Сохранить", "take": "Взять",
        "return": "Снять исполнителя", "presence": "Статус", "available": "на месте", "away": "отошёл",
        "offline": "не в сети", "assignee": "Исполнитель", "nobody": "никто", "history": "История",
        "deadlines": "Сроки", "identities": "Контакты", "events": "События", "search": "Поиск",
        "internal": "внутренняя", "queue": "Очередь", "done_reply": "Ответ поставлен в отправку.",
        "done_note": "Заметка добавлена.", "done_saved": "Сохранено.", "done_taken": "Заявка ваша.",
        "done_returned": "Заявка возвращена в очередь.",
        "dir_in": "Клиент", "dir_out": "Оператор", "dir_internal": "Внутренняя заметка",
        "dashboard": "Сводка", "last_days": "Последние 14 дней", "open": "в работе", "free": "свободно",
        "in_time": "в срок", "tickets": "заявки", "not_due": "срок не наступил",
        "chart_load": "Нагрузка операторов (в работе и ждут клиента / вместимость)",
        "chart_queues": "Ожидают в очередях групп", "chart_compliance": "Шаги регламентов, выполненные в срок",
        "chart_first_response": "Время до первого ответа", "chart_resolution": "Время до решения",
        "chart_channels": "Новые заявки по дням и каналам", "chart_satisfaction": "Удовлетворённость клиентов",
        "canned": "Вставить шаблон ответа", "canned_title": "Название", "canned_text": "Текст",
        "canned_add": "Добавить", "canned_hint": "{name} и {number} подставляются для каждой заявки.",
        "remove": "Удалить",
        "call_pop": "Звонок", "close": "Закрыть", "callstate_ringing": "звонит", "callstate_answered": "идёт разговор",
        "callstate_ended": "завершён", "withheld": "скрытый номер", "call_taken_by": "Принял(а)",
        "call_rings_for": "Звонит у", "no_name": "(без имени)", "open_tickets": "Открытые заявки",
        "call_on_ticket": "звонок пойдёт сюда", "call_attach": "Звонок об этом",
        "nothing_open": "Открытых заявок нет.",
        "call_hidden_open": "Ещё {n} открытых — в очередях, которых вы не видите.",
        "last_contacts": "Последние контакты", "no_contacts": "Раньше контактов не было.",
        "unknown_number": "Неизвестный номер.", "call_client_name": "Имя", "call_new_card": "Создать карточку",
        "call_card_number": "№ карточки", "call_link_card": "Добавить номер в эту карточку",
        "withheld_hint": "Номер скрыт: звонок попадёт в журнал, перезвонить некому.",
        "unreadable_hint": "Этот номер Switchboard не может прочитать как телефонный (для номеров без кода страны "
                           "нужен SWITCHBOARD_PHONE_REGION): звонок записан без карточки.",
        "call_new_ticket": "Открыть заявку по звонку", "call_ended": "Звонок завершён",
        "call_logged": "в журнале", "calls_now": "Звонят и идут разговоры", "call_since": "Длится",
        "call_direction": "Направление", "call_party": "Клиент", "call_state": "Состояние", "call_agents": "Сотрудники",
        "calls_none_now": "Сейчас никто не звонит и разговоров нет.", "calls_today": "Сегодня",
        "call_started": "Начало", "call_outcome": "Итог", "calls_none_today": "Сегодня звонков пока не было.",
        "other_tickets": "Другие заявки клиента", "calls": "Звонки", "category": "Категория", "transfer": "Передать",
        "answers": "ответы", "admin": "Администрирование", "agents": "Операторы", "groups": "Группы",
        "skills": "Навыки", "addresses": "Адреса поддержки", "regulations": "Регламенты",
        "notifications": "Уведомления", "name": "Имя", "role": "Роль", "head": "Руководитель", "recipient": "Кому",
        "admin_cli": "Изменения вносятся через командную строку или API",
        "any_address": "Принимается любой адрес, в группу по умолчанию (SWITCHBOARD_SMTP_ADDRESSES не задан).",
        "check_regulations": "Проверить файл регламентов (YAML) перед выкладкой", "check": "Проверить",
        "regulations_ok": "Файл верен. Он означает:",
        "met": "выполнен", "fired": "сработал", "pending": "ожидает", "cancelled": "отменён", "paused": "на паузе",
        "linked": "Связанные заявки", "link": "Связать", "merge": "Объединить с ней", "unlink": "Убрать связь",
        "link_or_merge": "Связать или объединить с заявкой клиента", "done_linked": "Связь добавлена.",
        "done_unlinked": "Связь убрана.",
        "done_merged": "Объединено: история другой заявки теперь здесь, а она закрыта.",
        "done_recorded": "Контакт записан.", "record_contact": "Записать контакт",
        "history_types": "Показать", "history_all": "Всё", "history_message": "Сообщения",
        "history_call": "Звонки", "older_contacts": "Более ранние контакты →", "their_tickets": "Заявки",
        "remind_me_by": "Напоминать о запланированном", "remind_auto": "в Telegram, если привязан, иначе почтой",
        "remind_email": "почтой", "remind_telegram": "в Telegram", "remind_sms": "по SMS",
        "remind_console": "только здесь, в консоли",
        "late_plans": "Просроченные запланированные контакты", "no_late_plans": "Просроченных контактов нет.",
        "activity_type": "Вид", "activity_outcome": "Итог", "activity_note": "Заметка",
        "next_contact_at": "Следующий контакт (ваше время)", "next_contact_what": "Зачем", "record": "Записать",
        "planned_contacts": "Запланировано с этим клиентом", "my_plan": "Мой план на сегодня",
        "plan_overdue": "просрочено", "reminder": "Напоминание", "outcome": "Итог",
        "outcome_hint": "(нужен, чтобы решить заявку)", "outcome_reason": "Причина отказа",
        "chart_outcomes": "Чем закончились обращения (доля решённых)", "chart_activities": "Записанные контакты",
        "contacts": "контакты", "contacts_recorded": "Записанные контакты",
        "indicators": "Показатели по сотрудникам",
        "stale_days": "Затянувшаяся через, дней", "in_work_band": "Норма заявок в работе",
        "indicators_hint": "Выделено: заявок в работе вне нормы, просроченные запланированные контакты, заявки без "
                           "движения {days} дней и больше.",
        "merged_into": "Эта заявка объединена с", "merged_from": "Объединены с этой:",
        "confirm_merge": "Объединить эту заявку с выбранной и закрыть её?",
        "any_channel": "все каналы", "any_priority": "любой приоритет", "filter": "Отобрать",
        "shortcuts": "Клавиши: / поиск · j k выбор · x отметить · Enter открыть · r написать · "
                     "Ctrl+Enter отправить · q очередь",
        "parked": "Отложенные сообщения", "reference": "Ссылка", "attempts": "Попыток", "error": "Ошибка",
        "when": "Когда",
        "parked_hint": "Что канал не смог сохранить после повторов, сохранено целиком: switchboard parked show N.",
    },
}


SECTIONS = {"queue.html": "queue", "ticket.html": "queue", "customer.html": "queue", "calls.html": "calls",
            "dashboard.html": "dashboard",
            "admin.html": "admin"}
"""Which part of the top bar's navigation a page belongs to."""


for _lang, _values in VALUES.items():
    WORDS[_lang].update(_values)


def language(request: web.Request, signed: Signed | None, prefer: str | None = None) -> str:
    """The agent's language, else `prefer` (a client's), else the browser's."""
    if signed is not None and signed.agent.language:
        return reader_language(request, signed.agent.language)
    return reader_language(request, prefer)


def words(request: web.Request, signed: Signed | None) -> dict[str, str]:
    """The words a page for this reader is written in (for what a handler puts into words itself)."""
    return WORDS[language(request, signed)]


_pages = Pages(Path(__file__).parent / "templates", WORDS)


def page(request: web.Request, template: str, signed: Signed | None, *, status: int = 200,
         headers: dict[str, str] | None = None, prefer: str | None = None, **context: Any) -> web.Response:
    lang = language(request, signed, prefer)
    context.setdefault("section", SECTIONS.get(template, ""))
    context.setdefault("request_path", request.path_qs)  # where a form on the page leads back to
    return _pages.render(template, lang, status=status, headers=headers, me=signed.agent if signed else None,
                         csrf=signed.csrf if signed else "", span=lambda d: waited(d, lang), **context)


def refused(request: web.Request, signed: Signed, why: str) -> web.HTTPForbidden:
    """A 403 to raise: a console page in the agent's language saying why (`why`: its words' key)."""
    shown = page(request, "forbidden.html", signed, status=403, why=why)
    headers = {k: v for k, v in shown.headers.items() if k.lower() not in ("content-type", "content-length")}
    return web.HTTPForbidden(text=shown.text, content_type="text/html", headers=headers)
