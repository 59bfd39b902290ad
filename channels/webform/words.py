"""The contact form's words in English and Russian, the topics it offers, and its refusals in the reader's
language (the checks name problems in English; a Russian page shows them in Russian)."""

from __future__ import annotations

import re

WORDS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Contact support", "lead": "Tell us what you need. You will get a ticket number to quote if you "
        "write again.", "fix": "Please correct the fields marked below.", "name": "Your name", "email": "Email",
        "email_hint": "(or a phone number)", "phone": "Phone",
        "phone_hint": "(with country code, e.g. +44 20 7946 0958)", "topic": "Topic", "subject": "Subject",
        "message": "Message", "files": "Files", "files_hint": "(optional; screenshots, documents)",
        "files_again": "Files are not kept when the form is shown again: please attach them once more.",
        "honeypot": "Leave this field empty", "send": "Send",
        "too_many": "Too many submissions from your address; please try again in a minute.",
        "not_saved": "We could not save your message just now. Your text is still here: please send it again in "
                     "a moment.",
        "thanks": "Thank you — we have your message", "thanks_title": "thank you", "number_is": "Your ticket number is",
        "again": "This form had been sent before; it is the same ticket.",
        "quote": "Quote it if you write to us again. An agent will answer you soon.",
        "portal": "Follow your request, add to it or send files on its page:", "portal_link": "your ticket's page",
        "kept": "It is kept for our staff to read, who will answer you at the address you gave.",
        "another": "Send another message", "language": "Language",
        "topic_question": "Question", "topic_request": "Request", "topic_defect": "Something is broken",
        "topic_billing": "Billing", "topic_feedback": "Feedback",
    },
    "ru": {
        "title": "Написать в поддержку", "lead": "Расскажите, что вам нужно. Вы получите номер заявки — назовите его, "
        "если напишете снова.", "fix": "Исправьте, пожалуйста, отмеченные поля.", "name": "Ваше имя",
        "email": "Почта", "email_hint": "(или номер телефона)", "phone": "Телефон",
        "phone_hint": "(с кодом страны, например +7 495 123-45-67)", "topic": "Тема обращения", "subject": "Тема",
        "message": "Сообщение", "files": "Файлы", "files_hint": "(по желанию: снимки экрана, документы)",
        "files_again": "Когда форма показана снова, файлы не сохраняются: приложите их ещё раз.",
        "honeypot": "Оставьте это поле пустым", "send": "Отправить",
        "too_many": "Слишком много обращений с вашего адреса; попробуйте через минуту.",
        "not_saved": "Не удалось сохранить сообщение. Текст на месте: отправьте его ещё раз через минуту.",
        "thanks": "Спасибо — ваше сообщение получено", "thanks_title": "спасибо", "number_is": "Номер вашей заявки",
        "again": "Эта форма уже отправлялась; заявка та же.",
        "quote": "Назовите его, если напишете снова. Оператор скоро ответит.",
        "portal": "Следите за заявкой, дополняйте её и присылайте файлы на её странице:",
        "portal_link": "страница вашей заявки",
        "kept": "Сообщение сохранено: сотрудники прочтут его и ответят по указанному адресу.",
        "another": "Написать ещё", "language": "Язык",
        "topic_question": "Вопрос", "topic_request": "Просьба", "topic_defect": "Что-то сломалось",
        "topic_billing": "Оплата", "topic_feedback": "Отзыв",
    },
}

_RUSSIAN: dict[str, str] = {
    "please write your message": "напишите, пожалуйста, сообщение",
    "give an email address or a phone number so we can answer":
        "оставьте почту или телефон, чтобы мы могли ответить",
    "include the country code, e.g. +44 20 7946 0958": "укажите код страны, например +7 495 123-45-67",
    "not a phone number": "это не номер телефона",
    "not a valid phone number": "такого номера не бывает",
    "must be left empty": "оставьте это поле пустым",
    "not a field of this form": "такого поля в форме нет",
    "must be text": "здесь должен быть текст",
}
_AT_MOST = re.compile(r"at most (\d+) characters")


def refusal(lang: str, field: str, problem: str) -> str:
    """A field's problem in the reader's language (an address the email check refused: in general words)."""
    if lang != "ru":
        return problem
    if problem in _RUSSIAN:
        return _RUSSIAN[problem]
    if found := _AT_MOST.fullmatch(problem):
        return f"не больше {found.group(1)} символов"
    if problem.startswith("choose one of"):
        return "выберите один из вариантов"
    if field == "email":
        return "адрес почты записан с ошибкой"
    return problem
