"""Templates: the one place they are made, changed (a new version each time) and rendered."""

import html
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone

from notifyproject.row_cache import row_cached, row_written
from sending.models import NotificationType, Service, Template, TemplateVersion
from sending.placeholders import (
    MissingPersonalisation,
    PersonalisationRefused,
    Value,
    names_keyed,
    personalisation_keyed,
    placeholder_key,
    placeholder_names,
    placeholders_fill,
    placeholders_missing,
    value_sanitise,
    value_text,
)
from sending.sanitise import sms_sanitise
from sending.text_rules import text_fault

VERSIONED_FIELDS = ("template_type", "name", "subject", "body")

# A template is read on every /v2 send: from the shared cache, written through on every change
# (`notifyproject.row_cache`), so a send never takes an old version. The one exception is a
# process killed between a change's commit and its cache write: the old entry then lives out
# its time, so that time is short (as the API key cache's).
TEMPLATE_ENTRY_SECONDS = 60


def _template_entry(template_id) -> str:
    return f"template:{template_id}"


def template_find(*, service: Service, template_id) -> Template | None:
    """The service's template with this id, as it is now; None when it has none such."""
    template = row_cached(
        _template_entry(template_id),
        Template,
        lambda: Template.objects.filter(id=template_id).first(),
        timeout=TEMPLATE_ENTRY_SECONDS,
    )
    return template if template is not None and template.service_id == service.id else None


@receiver(post_save, sender=Template)
def _template_saved(sender, instance: Template, **kwargs) -> None:
    row_written(_template_entry(instance.id), instance, timeout=TEMPLATE_ENTRY_SECONDS)


@receiver(post_delete, sender=Template)
def _template_deleted(sender, instance: Template, **kwargs) -> None:
    row_written(_template_entry(instance.id), None, timeout=TEMPLATE_ENTRY_SECONDS)


def template_check(*, template_type: str, name: str, body: str, subject: str) -> None:
    """Raise Django's ValidationError (per field) for a template that can't be sent."""
    errors: dict[str, str] = {}
    if template_type not in NotificationType.values:
        errors["template_type"] = f"must be one of {', '.join(NotificationType.values)}"
    if not name.strip():
        errors["name"] = "must not be empty"
    if not body.strip():
        errors["body"] = "must not be empty"
    if template_type == NotificationType.EMAIL and not subject.strip():
        errors["subject"] = "an email template needs a subject"
    if template_type == NotificationType.SMS and subject:
        errors["subject"] = "a text message template has no subject"
    faults = {
        "name": text_fault(name, one_line=True),
        "subject": text_fault(subject, one_line=True),
        "body": text_fault(body),
    }
    for field_name, fault in faults.items():
        if fault is not None:
            errors.setdefault(field_name, fault)
    if errors:
        raise ValidationError(errors)


def template_create(
    *,
    service: Service,
    template_type: str,
    name: str,
    body: str,
    subject: str = "",
    created_by: str = "",
) -> Template:
    template_check(template_type=template_type, name=name, body=body, subject=subject)
    with transaction.atomic():
        template = Template.objects.create(
            service=service,
            template_type=template_type,
            name=name,
            subject=subject,
            body=body,
            created_by=created_by,
        )
        _version_record(template, created_at=template.created_at, created_by=created_by)
    return template


def template_update(*, template: Template, changed_by: str = "", **changes: str) -> Template:
    """Change some of `VERSIONED_FIELDS`; a real change makes the next version. Answers the
    template as stored."""
    unknown = set(changes) - set(VERSIONED_FIELDS)
    if unknown:
        raise TypeError(f"not template fields: {', '.join(sorted(unknown))}")
    with transaction.atomic():
        current = Template.objects.select_for_update().get(id=template.id)
        wanted = {name: changes.get(name, getattr(current, name)) for name in VERSIONED_FIELDS}
        if all(getattr(current, name) == value for name, value in wanted.items()):
            return current
        template_check(**wanted)
        for name, value in wanted.items():
            setattr(current, name, value)
        current.version += 1
        current.updated_at = timezone.now()
        current.save(update_fields=[*VERSIONED_FIELDS, "version", "updated_at"])
        _version_record(current, created_at=current.updated_at, created_by=changed_by)
    return current


def _version_record(template: Template, *, created_at, created_by: str) -> None:
    TemplateVersion.objects.create(
        template=template,
        version=template.version,
        created_at=created_at,
        created_by=created_by,
        **{name: getattr(template, name) for name in VERSIONED_FIELDS},
    )


@dataclass(frozen=True)
class Rendered:
    body: str
    subject: str | None
    # For each value `sanitise_content_for` changed: {"unsanitised": …, "sanitised": …}.
    sanitised: dict[str, dict[str, str]] = field(default_factory=dict)


def template_render(
    template: Template | TemplateVersion,
    personalisation: dict[str, Value],
    *,
    sanitise_for: list[str] = (),
) -> Rendered:
    """The template with its placeholders filled; raises MissingPersonalisation naming every
    placeholder without a value, PersonalisationRefused naming every value that can't be put in
    the subject. Keys the template doesn't use are ignored. A text's body is sanitised as GOV.UK
    Notify's is (`sending.sanitise`): what is stored, counted, sent and shown is that."""
    is_email = template.template_type == NotificationType.EMAIL
    texts = (template.subject, template.body) if is_email else (template.body,)
    values = personalisation_keyed(personalisation)
    missing = placeholders_missing(values, *texts)
    if missing:
        raise MissingPersonalisation(missing)
    sanitise_keys = names_keyed(sanitise_for)
    filled: dict[str, str] = {}
    sanitised: dict[str, dict[str, str]] = {}
    for given, value in personalisation.items():
        key = placeholder_key(given)
        if value is None or key not in values:
            continue
        text = value_text(value, bullet_lists=is_email)
        if key in sanitise_keys:
            clean = value_sanitise(text)
            if clean != text:
                sanitised[given] = {"unsanitised": text, "sanitised": clean}
            text = clean
        filled[key] = text
    body = placeholders_fill(template.body, filled)
    if not is_email:
        return Rendered(body=sms_sanitise(body), subject=None)
    _subject_values_check(template.subject, personalisation, filled)
    subject = subject_line(placeholders_fill(template.subject, filled))
    return Rendered(body=body, subject=subject, sanitised=sanitised)


def subject_line(text: str) -> str:
    """A subject is one header line: as GOV.UK Notify does, every run of whitespace (line
    breaks too) becomes one space, and none is left at either end."""
    return " ".join(text.split())


def _subject_values_check(subject: str, personalisation: dict, filled: dict[str, str]) -> None:
    """Any other control character a value would bring into the subject line is refused
    (sending.text_rules), naming its placeholder."""
    keys = names_keyed(placeholder_names(subject))
    refused = [
        f"personalisation {given} (in the subject) {fault}"
        for given in personalisation
        if (key := placeholder_key(given)) in keys
        and key in filled
        and (fault := text_fault(subject_line(filled[key]), one_line=True))
    ]
    if refused:
        raise PersonalisationRefused(refused)


def email_html(body: str) -> str:
    """An email body as simple HTML: paragraphs at blank lines, line breaks kept, all escaped."""
    paragraphs = [p for p in body.replace("\r\n", "\n").split("\n\n") if p.strip()]
    return "".join(
        "<p>" + "<br>".join(html.escape(line) for line in p.strip("\n").split("\n")) + "</p>"
        for p in paragraphs
    )
