"""The day sheet as a printable HTML page (print CSS, one A4 page for an ordinary day) and as a
short text for a messenger message. Everything from the mailbox is escaped."""

from __future__ import annotations

from datetime import datetime
from html import escape
from zoneinfo import ZoneInfo

from med import DaySheet, Event

WEEKDAYS_DE = ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag")

_CSS = """
body { font-family: "DejaVu Sans", Arial, sans-serif; font-size: 11pt; margin: 2em; }
h1 { font-size: 16pt; margin-bottom: 0; }
p.sub { color: #555; margin-top: 0.2em; }
h2 { font-size: 12pt; border-bottom: 1px solid #999; margin-top: 1.4em; }
table { border-collapse: collapse; width: 100%; }
td, th { text-align: left; vertical-align: top; padding: 0.25em 0.5em 0.25em 0; }
td.time { white-space: nowrap; width: 8em; }
.who { color: #444; font-size: 9.5pt; }
.none { color: #777; font-style: italic; }
.note { color: #a60; }
@media print {
  @page { size: A4; margin: 15mm; }
  body { margin: 0; }
  h2 { break-after: avoid; }
  tr { break-inside: avoid; }
}
"""


def _local(moment: datetime | None, zone: ZoneInfo, fmt: str = "%H:%M") -> str:
    return moment.astimezone(zone).strftime(fmt) if moment else ""


def _span(event: Event, zone: ZoneInfo) -> str:
    if event.is_all_day:
        return "ganztägig"
    return f"{_local(event.start, zone)}–{_local(event.end, zone)}"


def _attendees(event: Event) -> str:
    return ", ".join(a.address.name or a.address.email for a in event.attendees)


def title(sheet: DaySheet) -> str:
    day = sheet.day
    return f"Tagesübersicht {sheet.owner} – {WEEKDAYS_DE[day.weekday()]}, {day:%d.%m.%Y}"


def render_html(sheet: DaySheet) -> str:
    """A complete HTML document for the sheet, with print styles."""
    zone = ZoneInfo(sheet.time_zone)
    rows = []
    for event in sheet.events:
        where = (
            f"<br><span class='who'>Ort: {escape(event.location)}</span>" if event.location else ""
        )
        who = _attendees(event)
        people = f"<br><span class='who'>Teilnehmer: {escape(who)}</span>" if who else ""
        rows.append(
            f"<tr><td class='time'>{escape(_span(event, zone))}</td>"
            f"<td>{escape(event.subject or '(ohne Betreff)')}{where}{people}</td></tr>"
        )
    mail = []
    for message in sheet.flagged:
        sender = message.from_.name or message.from_.email if message.from_ else ""
        due = f"fällig {_local(message.flag.due, zone, '%d.%m.')}" if message.flag.due else ""
        mail.append(
            f"<tr><td class='time'>{escape(due)}</td><td>{escape(message.subject)}"
            f"<br><span class='who'>{escape(sender)}</span></td></tr>"
        )
    tasks = [
        f"<tr><td class='time'>fällig {escape(_local(t.due, zone, '%d.%m.'))}</td>"
        f"<td>{escape(t.subject)} <span class='who'>({t.percent_complete} %)</span></td></tr>"
        for t in sheet.tasks
    ]
    notes = "".join(f"<p class='note'>{escape(n)}</p>" for n in sheet.notes)

    def table(items: list[str], empty: str) -> str:
        if not items:
            return f"<p class='none'>{empty}</p>"
        return "<table>" + "".join(items) + "</table>"

    made = _local(sheet.made, zone, "%d.%m.%Y %H:%M")
    return (
        "<!DOCTYPE html>\n<html lang='de'><head><meta charset='utf-8'>"
        f"<title>{escape(title(sheet))}</title><style>{_CSS}</style></head><body>"
        f"<h1>{escape(title(sheet))}</h1>"
        f"<p class='sub'>{escape(sheet.mailbox)} · Stand {made} ({escape(sheet.time_zone)})</p>"
        f"<h2>Termine ({len(sheet.events)})</h2>{table(rows, 'Keine Termine.')}"
        f"<h2>Zur Nachverfolgung ({len(sheet.flagged)})</h2>"
        f"{table(mail, 'Keine gekennzeichneten Nachrichten.')}"
        f"<h2>Fällige Aufgaben ({len(sheet.tasks)})</h2>{table(tasks, 'Keine fälligen Aufgaben.')}"
        f"{notes}</body></html>\n"
    )


def render_text(sheet: DaySheet) -> str:
    """The sheet as a messenger message: one line per appointment, flag and task."""
    zone = ZoneInfo(sheet.time_zone)
    lines = [title(sheet), ""]
    lines.append(f"Termine ({len(sheet.events)}):")
    for event in sheet.events:
        where = f" – {event.location}" if event.location else ""
        lines.append(f"• {_span(event, zone)} {event.subject}{where}")
    if not sheet.events:
        lines.append("• keine")
    lines.append(f"Zur Nachverfolgung ({len(sheet.flagged)}):")
    lines += [f"• {m.subject}" for m in sheet.flagged] or ["• keine"]
    lines.append(f"Fällige Aufgaben ({len(sheet.tasks)}):")
    lines += [f"• {t.subject} (fällig {_local(t.due, zone, '%d.%m.')})" for t in sheet.tasks] or [
        "• keine"
    ]
    lines += sheet.notes
    return "\n".join(lines)
