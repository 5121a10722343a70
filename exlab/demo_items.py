"""Items of the demo organisation: a boss's busy mailbox and calendar, and some shared ones.

Deterministic: a seeded random generator picks senders, subjects, flags and attachments, and
dates are laid out backwards from the lab's current day, so two labs seeded on the same day
hold the same items. Called by ``exlab.demo.seed`` inside its transaction.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from exlab.core import items as store_items
from exlab.core.recurrence import DAYS, Recurrence, occurrence_dates
from exlab.core.store import utc_text as dt_text

if TYPE_CHECKING:
    from exlab.core.store import Folder
    from exlab.lab import Lab

DOMAIN = "musterstadt.example"
CHEF = f"chef@{DOMAIN}"
ASSISTENZ = f"assistenz@{DOMAIN}"
SACHBEARBEITUNG = f"sachbearbeitung@{DOMAIN}"
POSTSTELLE = f"poststelle@{DOMAIN}"
LEITSTELLE = f"leitstelle@{DOMAIN}"
TEAMKALENDER = f"teamkalender@{DOMAIN}"
SITZUNGSSAAL = f"sitzungssaal@{DOMAIN}"

PEOPLE = [
    ("Tom Weber", ASSISTENZ),
    ("Lena Koch", SACHBEARBEITUNG),
    ("Poststelle", POSTSTELLE),
    ("Leitstelle", LEITSTELLE),
    ("Markus Schäfer", "m.schaefer@kreistag-musterstadt.example"),
    ("Dr. Jana Hoffmann", "j.hoffmann@klinikum-musterstadt.example"),
    ("Petra Neumann", "presse@musterstadt.example"),
    ("Stefan Wolf", "wolf@bauhof-musterstadt.example"),
    ("Ayşe Demir", "a.demir@gesundheitsamt.example"),
    ("Claire Dubois", "c.dubois@partnerstadt-ville.example"),
    ("James Miller", "j.miller@eu-regional-fund.example"),
    ("Kämmerei", f"kaemmerei@{DOMAIN}"),
    ("Personalrat", f"personalrat@{DOMAIN}"),
    ("IT-Service", f"it-service@{DOMAIN}"),
]
# Subjects and bodies that belong together. Placeholders: {y} a coming year, {prev} the last
# year, {d} a coming working day, {past} a past working day, {kw} a coming calendar week,
# {nr} a file number. "anbei"/"attached" bodies carry an attachment.
TOPICS_DE: list[tuple[str, str]] = [
    (
        "Haushaltsplan {y}: Entwurf zur Abstimmung",
        "anbei der Entwurf des Haushaltsplans {y} mit den Änderungen aus der Kämmerei. Wir "
        "bitten um Ihre Anmerkungen bis Freitag, damit die Vorlage rechtzeitig in den Umlauf geht.",
    ),
    (
        "Sitzung des Kreisausschusses am {d}",
        "zur Sitzung des Kreisausschusses am {d} um 15:00 Uhr im Plenarsaal lade ich Sie "
        "herzlich ein. Die Tagesordnung folgt mit der Post.",
    ),
    (
        "Rückfrage zum Bauantrag Nr. {nr}",
        "der Antragsteller hat sich telefonisch nach dem Stand erkundigt. Das Bauamt wartet noch "
        "auf die Stellungnahme der Unteren Naturschutzbehörde. Sollen wir einen Zwischenbescheid "
        "schicken?",
    ),
    (
        "Pressetermin Eröffnung Rettungswache",
        "die Presse hat für die Eröffnung der Rettungswache Nord zugesagt. Können Sie ein kurzes "
        "Statement (ca. 2 Minuten) übernehmen? Fotos sind ab 10:30 Uhr vorgesehen.",
    ),
    (
        "Personalangelegenheit – vertraulich",
        "ich bitte um einen kurzen Gesprächstermin in einer Personalangelegenheit. Die Details "
        "möchte ich nicht per E-Mail besprechen.",
    ),
    (
        "Einladung: Klausurtagung Verwaltungsvorstand",
        "die Klausurtagung findet wie besprochen auf Schloss Hohenberg statt. Anreise bis 8:30 "
        "Uhr, Ende gegen 17 Uhr. Bitte teilen Sie mir Ihre Themenwünsche mit.",
    ),
    (
        "Protokoll der Dienstbesprechung vom {past}",
        "anbei das Protokoll der Dienstbesprechung vom {past}. Änderungswünsche nehme ich gern "
        "bis Mittwoch entgegen; danach geht es an alle Amtsleitungen.",
    ),
    (
        "Fördermittelbescheid Breitbandausbau",
        "anbei der Fördermittelbescheid für den zweiten Bauabschnitt. Die Mittel sind bis Ende "
        "{y} abzurufen; die Kämmerei ist informiert.",
    ),
    (
        "Beschwerde Bürgerin wegen Straßenreinigung",
        "eine Bürgerin aus der Lindenstraße beschwert sich erneut über die ausgefallene "
        "Straßenreinigung. Der Bauhof prüft den Tourenplan; eine Antwort bereite ich vor.",
    ),
    (
        "Winterdienst: Einsatzplanung {y}",
        "die Einsatzplanung für den Winterdienst steht. Streugut ist zu 80 % eingelagert, die "
        "Rufbereitschaft beginnt am 1. Dezember.",
    ),
    (
        "Bettenkapazität Klinikum – Lagebericht",
        "die Auslastung der Intensivbetten liegt aktuell bei 87 %. Wir melden uns, sobald sich "
        "die Lage ändert.",
    ),
    (
        "Stellungnahme zum Nahverkehrsplan",
        "anbei unser Entwurf der Stellungnahme zum Nahverkehrsplan. Die Frist des Verkehrs"
        "verbunds endet in zwei Wochen.",
    ),
    (
        "Urlaubsvertretung KW {kw}",
        "in der KW {kw} bin ich im Urlaub. Die Vertretung übernimmt Frau Koch; dringende "
        "Vorgänge habe ich ihr übergeben.",
    ),
    (
        "Vorlage für den Kreistag: Schulentwicklungsplan",
        "anbei die Beschlussvorlage zum Schulentwicklungsplan mit der Bitte um Mitzeichnung.",
    ),
    (
        "Digitalisierung der Bauakten – Zwischenstand",
        "bisher sind rund 4.200 Bauakten gescannt. Der Dienstleister liegt im Zeitplan; offene "
        "Punkte besprechen wir im nächsten Jour fixe.",
    ),
    (
        "Terminanfrage Landrat Nachbarkreis",
        "das Büro des Landrats im Nachbarkreis fragt nach einem Termin zum Rettungsdienst"
        "bereich. Vorgeschlagen ist der {d}, 10:00 Uhr. Passt Ihnen das?",
    ),
    (
        "Dienstwagen: Inspektion fällig",
        "der Dienstwagen muss in die Inspektion. Die Werkstatt hätte am {d} Zeit; ein "
        "Ersatzfahrzeug steht bereit.",
    ),
    (
        "Jahresbericht Gesundheitsamt {prev}",
        "anbei der Jahresbericht {prev} des Gesundheitsamts zur Kenntnisnahme. Eine Kurzfassung "
        "für den Kreistag folgt.",
    ),
]
TOPICS_EN: list[tuple[str, str]] = [
    (
        "Partnership visit: agenda for {d}",
        "please find attached the draft agenda for our visit on {d}. Let me know if anything "
        "should be added.",
    ),
    (
        "EU regional fund: reporting deadline",
        "a friendly reminder that the interim report is due at the end of this month. The "
        "template has not changed since last year.",
    ),
    (
        "Follow-up on our call about the hospital network",
        "thank you for the call. As agreed, we will share the figures for the joint procurement "
        "once the board has approved them.",
    ),
    (
        "Conference invitation: Smart Regions {y}",
        "we would be delighted to welcome you as a speaker at Smart Regions {y}. The programme "
        "is attached.",
    ),
    (
        "Draft MoU for review",
        "please find attached the draft memorandum of understanding. Our legal team is "
        "available for questions.",
    ),
    (
        "Quarterly figures – please confirm",
        "could you confirm the quarterly figures we received last week? We need them for our "
        "report to the managing authority.",
    ),
]
GREETING_DE = ("Sehr geehrte Frau Dr. Berg,", "Liebe Frau Berg,", "Guten Tag Frau Dr. Berg,")
CLOSING_DE = ("Mit freundlichen Grüßen", "Viele Grüße", "Beste Grüße")
GREETING_EN = ("Dear Dr. Berg,", "Dear Anna,")
CLOSING_EN = ("Kind regards,", "Best regards,", "Best wishes,")
ATTACHING = ("anbei", "attached")
CATEGORIES = ["Rot", "Blau", "Grün", "Gelb", "Kreistag", "Klinik", "Presse"]
ATTACHMENTS = [
    ("Vorlage.pdf", "application/pdf", b"%PDF-1.4\n% lab demo document\n"),
    (
        "Protokoll.docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        b"PK\x03\x04 lab demo",
    ),
    (
        "Zahlen.xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        b"PK\x03\x04 lab demo sheet",
    ),
    ("Lageplan.png", "image/png", b"\x89PNG\r\n\x1a\n lab demo"),
    ("notes.txt", "text/plain", "Notizen zur Besprechung – bitte prüfen.\n".encode()),
]
FLAG_REQUEST = "Zur Nachverfolgung"
REPLIES_DE = (
    "Vielen Dank, einverstanden.\n\nA. Berg",
    "Danke für die Information. Bitte setzen Sie das so um.\n\nViele Grüße\nAnna Berg",
    "Einverstanden; bitte legen Sie mir die Endfassung zur Unterschrift vor.\n\nA. Berg",
    "Das passt. Bitte einen Termin mit Herrn Weber abstimmen.\n\nBeste Grüße\nAnna Berg",
)


def _workday(d: date) -> date:
    """The day itself, or the Monday after a weekend (business dates are working days)."""
    return d + timedelta(days=(7 - d.weekday()) % 7) if d.weekday() >= 5 else d


def _workday_before(d: date) -> date:
    """The day itself, or the Friday before a weekend."""
    return d - timedelta(days=d.weekday() - 4) if d.weekday() >= 5 else d


def _mb(name: str, email: str) -> dict[str, str]:
    return {"name": name, "email": email}


class _Seeder:
    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.store = lab.store
        self.rng = random.Random(20261125)
        now = lab.now().astimezone(UTC)
        # The newest mail arrived at seven this morning, or just now if it is earlier: a demo
        # started before seven showed mail from later today.
        seven = datetime.combine(now.date(), time(7, 0), tzinfo=UTC)
        self.today = min(seven, now.replace(second=0, microsecond=0))

    def folder(self, mailbox: str, name: str) -> Folder:
        found = self.store.distinguished_folder(mailbox, name)
        if found is None:
            raise LookupError(f"{mailbox} has no {name} folder")
        return found

    def sub(self, parent: Folder, name: str) -> Folder | None:
        return next((f for f in self.store.children(parent.id) if f.display_name == name), None)

    def add(
        self,
        folder: Folder,
        item_class: str,
        props: dict[str, Any],
        by: str,
        atts: Sequence[tuple[str, str, bytes]] = (),
    ) -> store_items.Item:
        item = store_items.create_item(
            self.store, folder, item_class, props, created_by=by, now=self.lab.now()
        )
        for name, ctype, content in atts:
            store_items.add_attachment(
                self.store, item.id, name, ctype, content, now=self.lab.now()
            )
        return item

    # -- mail ---------------------------------------------------------------------------------

    def message(
        self,
        folder: Folder,
        owner: tuple[str, str],
        when: datetime,
        *,
        sender: tuple[str, str] | None = None,
        english: bool = False,
        subject: str | None = None,
        body: str | None = None,
    ) -> store_items.Item:
        rng = self.rng
        name, email = sender or rng.choice(PEOPLE)
        if subject is None or body is None:
            topic, text = self.topic(when, english=english)
            greeting = rng.choice(GREETING_EN if english else GREETING_DE)
            closing = rng.choice(CLOSING_EN if english else CLOSING_DE)
            body = f"{greeting}\n\n{text}\n\n{closing}\n{name}"
        else:
            topic, text = subject, body
        props: dict[str, Any] = {
            "item:Subject": topic,
            "item:Body": {"type": "Text", "text": body},
            "message:From": _mb(name, email),
            "message:Sender": _mb(name, email),
            "message:ToRecipients": [_mb(*owner)],
            "item:DateTimeReceived": dt_text(when),
            "item:DateTimeSent": dt_text(when - timedelta(minutes=rng.randint(1, 30))),
            "message:IsRead": when < self.today - timedelta(days=2) or rng.random() < 0.5,
            "item:IsDraft": False,
            "message:InternetMessageId": f"<{rng.getrandbits(64):x}@{email.split('@')[1]}>",
            "item:Culture": "en-US" if english else "de-DE",
        }
        roll = rng.random()
        if roll < 0.1:
            props["item:Importance"] = "High"
        elif roll < 0.15:
            props["item:Importance"] = "Low"
        if rng.random() < 0.3:
            props["item:Categories"] = rng.sample(CATEGORIES, rng.randint(1, 2))
        flag = rng.random()
        if flag < 0.15:
            due = when + timedelta(days=rng.randint(1, 14))
            props.update(
                {
                    store_items.PR_FLAG_STATUS: 2,
                    store_items.PID_LID_FLAG_REQUEST: FLAG_REQUEST,
                    store_items.PID_LID_TASK_START: dt_text(when),
                    store_items.PID_LID_TASK_DUE: dt_text(due),
                }
            )
        elif flag < 0.2:
            props.update(
                {
                    store_items.PR_FLAG_STATUS: 1,
                    store_items.PR_FLAG_COMPLETE_TIME: dt_text(when + timedelta(days=1)),
                    store_items.PID_LID_TASK_COMPLETE: dt_text(when + timedelta(days=1)),
                }
            )
        atts = []
        if any(word in text for word in ATTACHING):
            atts = rng.sample(ATTACHMENTS, rng.randint(1, 2))
        return self.add(folder, "IPM.Note", props, email, atts)

    def topic(self, when: datetime, *, english: bool = False) -> tuple[str, str]:
        """A subject and matching body text; dates fit the day the mail is received."""
        rng = self.rng
        subject, text = rng.choice(TOPICS_EN if english else TOPICS_DE)
        day = when.date()
        values = {
            "y": str(day.year + (1 if day.month >= 9 else rng.choice((0, 1)))),
            "prev": str(day.year - 1),
            "d": _workday(day + timedelta(days=rng.randint(2, 20))).strftime("%d.%m.%Y"),
            "past": _workday_before(day - timedelta(days=rng.randint(1, 10))).strftime("%d.%m.%Y"),
            "kw": str((day + timedelta(weeks=rng.randint(1, 6))).isocalendar().week),
            "nr": f"{day.year}/{rng.randint(100, 999):04d}",
        }
        return subject.format(**values), text.format(**values)

    def mail(self) -> None:
        owner = ("Dr. Anna Berg", CHEF)
        inbox = self.folder(CHEF, "inbox")
        subfolders = [
            f for f in (self.sub(inbox, n) for n in ("Vorgänge", "Kreistag", "Klinikverbund")) if f
        ]
        for i in range(260):
            when = self.today - timedelta(
                hours=i * 11 + self.rng.randint(0, 9), minutes=self.rng.randint(0, 59)
            )
            self.message(inbox, owner, when, english=self.rng.random() < 0.2)
        for i, folder in enumerate(subfolders * 6):
            self.message(folder, owner, self.today - timedelta(days=3 + i * 4))
        private = [
            (
                "Arztbefund – persönlich",
                "Hallo Anna,\n\ndie Praxis hat angerufen: der Befund "
                "ist da und alles in Ordnung. Ruf bitte zurück, wenn du magst.\n\nMichael",
            ),
            (
                "Privat: Wohnungsangelegenheit",
                "Hallo Anna,\n\nder Vermieter will am Dienstag "
                "wegen der Heizung vorbeikommen. Ich bin zu Hause.\n\nMichael",
            ),
            (
                "Persönlich: Glückwünsche zum Geburtstag",
                "Liebe Anna,\n\nalles Gute zum Geburtstag! Heute Abend koche ich.\n\nMichael",
            ),
            (
                "Familienfeier Samstag",
                "Hallo Anna,\n\nfür Samstag haben jetzt alle zugesagt, "
                "wir sind zwölf Leute. Kuchen ist bestellt.\n\nMichael",
            ),
        ]
        for i, (subject, text) in enumerate(private):
            item = self.message(
                inbox,
                owner,
                self.today - timedelta(days=i * 5 + 1, hours=3),
                sender=("Michael Berg", "michael.berg@privat.example"),
                subject=subject,
                body=text,
            )
            item.props["item:Sensitivity"] = "Private"
            store_items.save_item(self.store, item, self.lab.now())
        sent = self.folder(CHEF, "sentitems")
        for i in range(12):
            name, email = self.rng.choice(PEOPLE)
            when = self.today - timedelta(days=i * 3, hours=2)
            subject, _ = self.topic(when)
            self.add(
                sent,
                "IPM.Note",
                {
                    "item:Subject": "AW: " + subject,
                    "item:Body": {"type": "Text", "text": self.rng.choice(REPLIES_DE)},
                    "message:From": _mb(*owner),
                    "message:Sender": _mb(*owner),
                    "message:ToRecipients": [_mb(name, email)],
                    "message:IsRead": True,
                    "item:DateTimeSent": dt_text(when),
                    "item:DateTimeReceived": dt_text(when),
                    "item:IsDraft": False,
                },
                CHEF,
            )
        drafts = self.folder(CHEF, "drafts")
        self.add(
            drafts,
            "IPM.Note",
            {
                "item:Subject": "Entwurf: Grußwort Neujahrsempfang",
                "item:Body": {"type": "Text", "text": "Liebe Bürgerinnen und Bürger, ..."},
                "message:From": _mb(*owner),
                "item:IsDraft": True,
                "message:IsRead": True,
            },
            CHEF,
        )
        # Voicemail as Unified Messaging leaves it: a message in the Inbox with the recording
        # attached (the Voicemail folder is a search folder over the Inbox).
        voicemail = self.folder(CHEF, "inbox")
        for i, (name, number, seconds) in enumerate(
            (
                ("Markus Schäfer", "+49 6151 12345", 34),
                ("Unbekannt", "+49 170 5550123", 12),
            )
        ):
            when = self.today - timedelta(days=i, hours=5)
            self.add(
                voicemail,
                "IPM.Note.Microsoft.Voicemail.UM.CA",
                {
                    "item:Subject": f"Sprachnachricht von {name} ({seconds} Sekunden)",
                    "item:Body": {"type": "Text", "text": f"Anruf von {number}."},
                    "message:From": _mb(name, f"voicemail+{number.replace(' ', '')}@{DOMAIN}"),
                    "message:ToRecipients": [_mb(*owner)],
                    "message:IsRead": False,
                    "item:DateTimeReceived": dt_text(when),
                    "item:IsDraft": False,
                },
                CHEF,
                [(f"audio{i + 1}.wav", "audio/wav", _wav(seconds))],
            )

    # -- calendar -----------------------------------------------------------------------------

    def appointment(
        self,
        folder: Folder,
        subject: str,
        start: datetime,
        minutes: int,
        *,
        by: str,
        location: str = "",
        extra: dict[str, Any] | None = None,
    ) -> store_items.Item:
        props: dict[str, Any] = {
            "item:Subject": subject,
            "calendar:Start": dt_text(start),
            "calendar:End": dt_text(start + timedelta(minutes=minutes)),
            "calendar:Location": location,
            "calendar:LegacyFreeBusyStatus": "Busy",
            "calendar:StartTimeZone": {"id": "W. Europe Standard Time"},
            "calendar:EndTimeZone": {"id": "W. Europe Standard Time"},
            "calendar:UID": f"{self.rng.getrandbits(96):024x}",
            "calendar:CalendarItemType": "Single",
            "item:ReminderIsSet": True,
            "item:ReminderMinutesBeforeStart": 15,
        }
        props.update(extra or {})
        if "calendar:Recurrence" in props:
            props["calendar:CalendarItemType"] = "RecurringMaster"
            # A master starts on its first occurrence, as Exchange stores it.
            rec = Recurrence.from_json(props["calendar:Recurrence"])
            first = next(occurrence_dates(rec), (0, start.date()))[1]
            start += timedelta(days=(first - start.date()).days)
            props["calendar:Start"] = dt_text(start)
            props["calendar:End"] = dt_text(start + timedelta(minutes=minutes))
        return self.add(folder, "IPM.Appointment", props, by)

    def calendar(self) -> None:
        cal = self.folder(CHEF, "calendar")
        day = self.today.date()
        monday = day - timedelta(days=day.weekday())

        def at(d: date, h: int, mi: int = 0) -> datetime:
            # Demo times are Berlin wall-clock times (CET: UTC+1 in winter, CEST in summer).
            from zoneinfo import ZoneInfo

            return datetime.combine(d, time(h, mi), tzinfo=ZoneInfo("Europe/Berlin"))

        singles = [
            (0, 10, "Gespräch mit der Kämmerei", "Raum 204", 60),
            (1, 14, "Pressetermin Rettungswache", "Rettungswache Nord", 90),
            (2, 8, "Frühstück Wirtschaftsförderung", "Ratskeller", 60),
            (3, 16, "Telefonat Ministerium", "", 30),
            (4, 11, "Ortstermin Bauhof", "Bauhof", 120),
            (7, 9, "Klausurtagung Verwaltungsvorstand", "Schloss Hohenberg", 480),
            (9, 13, "Besuch Partnerstadt", "Rathaus, Sitzungssaal 1", 180),
            (-3, 15, "Personalgespräch", "Büro Landrätin", 45),
            (-6, 10, "Jahresgespräch Klinikum", "Klinikum", 90),
        ]
        for offset, hour, subject, location, minutes in singles:
            self.appointment(
                cal,
                subject,
                at(_workday(day + timedelta(days=offset)), hour),
                minutes,
                by=CHEF,
                location=location,
            )
        self.appointment(
            cal,
            "Arzttermin",
            at(_workday(day + timedelta(days=2)), 17),
            60,
            by=CHEF,
            location="Praxis Dr. Lange",
            extra={"item:Sensitivity": "Private"},
        )
        self.appointment(
            cal,
            "Familie: Elternabend",
            at(_workday(day + timedelta(days=5)), 19),
            90,
            by=CHEF,
            extra={"item:Sensitivity": "Private"},
        )
        # Jour fixe every Monday 09:00 without end; one moved, one cancelled occurrence.
        start = monday - timedelta(weeks=4)
        jf = self.appointment(
            cal,
            "Jour fixe Verwaltungsvorstand",
            at(start, 9),
            60,
            by=CHEF,
            location="Sitzungssaal 1",
            extra={
                "calendar:Recurrence": Recurrence(
                    "weekly", start, "no_end", days_of_week=("Monday",)
                ).to_json()
            },
        )
        moved_index, deleted_index = 6, 7  # the coming Mondays (+2 and +3 weeks)
        moved_day = start + timedelta(weeks=moved_index - 1)
        exc_props = {k: v for k, v in jf.props.items() if k != "calendar:Recurrence"}
        exc_props.update(
            {
                "calendar:Start": dt_text(at(moved_day, 11)),
                "calendar:End": dt_text(at(moved_day, 12)),
                "calendar:OriginalStart": dt_text(at(moved_day, 9)),
                "calendar:RecurrenceId": dt_text(at(moved_day, 9)),
                "calendar:CalendarItemType": "Exception",
                "calendar:Location": "Raum 204",
                "lab:index": moved_index,
            }
        )
        store_items.create_item(
            self.store,
            cal,
            "IPM.Appointment",
            exc_props,
            created_by=CHEF,
            now=self.lab.now(),
            master_id=jf.id,
        )
        jf.props["lab:deleted"] = [deleted_index]
        store_items.save_item(self.store, jf, self.lab.now())
        # Kreistag: second Thursday of each month, 15:00, until the end of next year.
        self.appointment(
            cal,
            "Sitzung des Kreistags",
            at(day.replace(day=1), 15),
            240,
            by=CHEF,
            location="Kreishaus, Plenarsaal",
            extra={
                "calendar:Recurrence": Recurrence(
                    "relative_monthly",
                    day.replace(day=1),
                    "end_date",
                    days_of_week=("Thursday",),
                    day_of_week_index="Second",
                    end_date=date(day.year + 1, 12, 31),
                ).to_json()
            },
        )
        # Budget talks: ten working days in a row.
        budget_start = _workday(day + timedelta(days=14))
        self.appointment(
            cal,
            "Haushaltsberatung",
            at(budget_start, 8, 30),
            30,
            by=CHEF,
            extra={
                "calendar:Recurrence": Recurrence(
                    "weekly", budget_start, "numbered", days_of_week=DAYS[:5], count=10
                ).to_json()
            },
        )
        # Yearly: Neujahrsempfang on the second Friday of January, and the partner-city
        # anniversary.
        jan = date(day.year, 1, 1)
        self.appointment(
            cal,
            "Neujahrsempfang",
            at(jan, 18),
            180,
            by=CHEF,
            location="Kreishaus",
            extra={
                "calendar:Recurrence": Recurrence(
                    "relative_yearly",
                    jan,
                    "no_end",
                    days_of_week=("Friday",),
                    day_of_week_index="Second",
                    month="January",
                ).to_json()
            },
        )
        may = date(day.year, 5, 1)
        self.appointment(
            cal,
            "Städtepartnerschaft: Jahrestag",
            at(may, 12),
            120,
            by=CHEF,
            extra={
                "calendar:Recurrence": Recurrence(
                    "relative_yearly",
                    may,
                    "numbered",
                    days_of_week=("Friday",),
                    day_of_week_index="Second",
                    month="May",
                    count=5,
                ).to_json()
            },
        )
        self.appointment(
            cal,
            "Abstimmung Monatsbericht",
            at(day.replace(day=1), 14),
            60,
            by=CHEF,
            extra={
                "calendar:Recurrence": Recurrence(
                    "relative_monthly",
                    day.replace(day=1),
                    "numbered",
                    days_of_week=("Weekday",),
                    day_of_week_index="Last",
                    count=12,
                ).to_json()
            },
        )
        # A meeting chef organised, with answers from her staff.
        self.appointment(
            cal,
            "Vorbereitung Kreisausschuss",
            at(_workday(day + timedelta(days=3)), 10),
            60,
            by=CHEF,
            location="Büro Landrätin",
            extra={
                "calendar:IsMeeting": True,
                "calendar:MeetingRequestWasSent": True,
                "calendar:MyResponseType": "Organizer",
                "calendar:Organizer": _mb("Dr. Anna Berg", CHEF),
                "calendar:RequiredAttendees": [
                    {"name": "Tom Weber", "email": ASSISTENZ, "response": "Accept"},
                    {"name": "Lena Koch", "email": SACHBEARBEITUNG, "response": "Tentative"},
                ],
                "calendar:OptionalAttendees": [
                    {
                        "name": "Markus Schäfer",
                        "email": "m.schaefer@kreistag-musterstadt.example",
                        "response": "NoResponseReceived",
                    },
                ],
            },
        )

        # Lagebesprechung with the control room every Tuesday and Thursday at 08:00, so every
        # week of the calendar shows one series more than once. Seeded without touching the
        # random sequence, so the rest of the demo stays as it was.
        state = self.rng.getstate()
        briefing_start = monday - timedelta(weeks=8) + timedelta(days=1)
        self.appointment(
            cal,
            "Lagebesprechung Leitstelle",
            at(briefing_start, 8),
            30,
            by=CHEF,
            location="Leitstelle, Lageraum",
            extra={
                "calendar:UID": "lagebesprechung-leitstelle",
                "calendar:Recurrence": Recurrence(
                    "weekly", briefing_start, "no_end", days_of_week=("Tuesday", "Thursday")
                ).to_json(),
            },
        )
        self.rng.setstate(state)

    def meeting_request(self) -> None:
        """A meeting Lena Koch sends to chef: pending in chef's and the delegate's inbox."""
        from zoneinfo import ZoneInfo

        from exlab.core.caller import Caller
        from exlab.core.meetings import invite

        cal = self.folder(SACHBEARBEITUNG, "calendar")
        day = _workday(self.today.date() + timedelta(days=4))
        start = datetime.combine(day, time(14, 0), tzinfo=ZoneInfo("Europe/Berlin"))
        weekday = ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag")[day.weekday()]
        body = (
            "Liebe Frau Dr. Berg,\n\nich möchte mit Ihnen den Stand des Förderantrags "
            "Breitbandausbau (zweiter Bauabschnitt) abstimmen, bevor die Frist abläuft.\n\n"
            f"Wann: {weekday}, {day:%d.%m.%Y}, 14:00–14:45 Uhr\n"
            "Wo: Raum 112, Kreishaus\n\n"
            "Viele Grüße\nLena Koch"
        )
        item = self.appointment(
            cal,
            "Abstimmung Fördermittel Breitband",
            start,
            45,
            by=SACHBEARBEITUNG,
            location="Raum 112",
            extra={
                "item:Body": {"type": "Text", "text": body},
                "calendar:IsMeeting": True,
                "calendar:MeetingRequestWasSent": True,
                "calendar:MyResponseType": "Organizer",
                "calendar:Organizer": _mb("Lena Koch", SACHBEARBEITUNG),
                "calendar:RequiredAttendees": [
                    {"name": "Dr. Anna Berg", "email": CHEF, "response": "Unknown"},
                ],
            },
        )
        invite(Caller(lab=self.lab, user=SACHBEARBEITUNG), item, self.lab.now())

    # -- contacts, tasks, notes ---------------------------------------------------------------

    def contacts(self) -> None:
        folder = self.folder(CHEF, "contacts")
        for name, email in PEOPLE[4:]:
            given, _, surname = name.rpartition(" ")
            company = email.split("@")[1].split(".")[0].replace("-", " ").title()
            self.add(
                folder,
                "IPM.Contact",
                {
                    "item:Subject": name,
                    "contacts:DisplayName": name,
                    "contacts:FileAs": f"{surname}, {given}".strip(", "),
                    "contacts:GivenName": given.replace("Dr. ", ""),
                    "contacts:Surname": surname,
                    "contacts:CompanyName": company,
                    "contacts:EmailAddresses": {"EmailAddress1": email},
                    "contacts:PhoneNumbers": {
                        "BusinessPhone": f"+49 6151 {self.rng.randint(100000, 999999)}"
                    },
                    "contacts:JobTitle": self.rng.choice(
                        ["Referent", "Leitung", "Sachgebiet", "Director", "Pressesprecherin"]
                    ),
                },
                CHEF,
            )

    def tasks(self) -> None:
        folder = self.folder(CHEF, "tasks")
        specs = [
            ("Haushaltsrede vorbereiten", "InProgress", 5, 40.0),
            ("Stellungnahme Nahverkehrsplan abzeichnen", "NotStarted", 2, 0.0),
            ("Personalratsvorlage prüfen", "WaitingOnOthers", 7, 20.0),
            ("Grußwort Feuerwehrjubiläum", "Completed", -3, 100.0),
            ("Dienstreiseantrag Brüssel", "NotStarted", 12, 0.0),
            ("Jahresgespräche terminieren", "Deferred", 30, 10.0),
            ("Antwort an Bürgerbeauftragten", "InProgress", -1, 50.0),
        ]
        for subject, status, due_days, pct in specs:
            due = self.today + timedelta(days=due_days)
            props: dict[str, Any] = {
                "item:Subject": subject,
                "task:Status": status,
                "task:DueDate": dt_text(due),
                "task:StartDate": dt_text(self.today - timedelta(days=3)),
                "task:PercentComplete": pct,
                "task:IsComplete": status == "Completed",
                "task:Owner": "Dr. Anna Berg",
            }
            if status == "Completed":
                props["task:CompleteDate"] = dt_text(due)
            self.add(folder, "IPM.Task", props, CHEF)

    def notes(self, folder: Folder, texts: list[str], by: str) -> None:
        for text in texts:
            self.add(
                folder,
                "IPM.StickyNote",
                {
                    "item:Subject": text.split("\n", 1)[0],
                    "item:Body": {"type": "Text", "text": text},
                },
                by,
            )

    # -- archive, functional mailboxes, team calendar, public folders ---------------------------

    def archive(self) -> None:
        owner = ("Dr. Anna Berg", CHEF)
        archive_inbox = self.store.distinguished_folder(CHEF, "archiveinbox")
        top = self.store.distinguished_folder(CHEF, "archivemsgfolderroot")
        targets = [f for f in [archive_inbox] if f is not None]
        if top is not None:
            targets += [f for f in (self.sub(top, y) for y in ("2024", "2025")) if f]
        for i in range(24):
            if not targets:
                break
            folder = targets[i % len(targets)]
            year = folder.display_name if folder.display_name.isdigit() else "2025"
            when = datetime(int(year), 1 + i % 12, 3 + i, 9, 30, tzinfo=UTC)
            self.message(folder, owner, when)

    def functional(self) -> None:
        for address, display, subjects in (
            (
                POSTSTELLE,
                "Poststelle",
                [
                    (
                        "Eingang: Widerspruch Gebührenbescheid",
                        "anbei der Scan des Widerspruchs gegen den Gebührenbescheid; "
                        "das Original liegt im Postfach des Rechtsamts.",
                    ),
                    (
                        "Eingang: Anfrage Akteneinsicht",
                        "ein Rechtsanwalt beantragt Akteneinsicht "
                        "in ein Bauverfahren. Bitte an das Bauamt weiterleiten.",
                    ),
                    (
                        "Eingang: Rechnung Stadtwerke",
                        "anbei die Rechnung der Stadtwerke für "
                        "das Kreishaus zur sachlichen Prüfung.",
                    ),
                    (
                        "Posteingang Ministerium (Scan)",
                        "anbei der eingescannte Erlass des "
                        "Ministeriums; er ist vorab per Fax eingegangen.",
                    ),
                    (
                        "Zustellung: Gerichtspost",
                        "heute ist eine förmliche Zustellung des "
                        "Verwaltungsgerichts eingegangen. Die Frist läuft ab heute.",
                    ),
                ],
            ),
            (
                LEITSTELLE,
                "Leitstelle",
                [
                    (
                        "Einsatzbericht Großbrand Gewerbegebiet",
                        "anbei der Einsatzbericht zum "
                        "Großbrand im Gewerbegebiet Süd: 62 Einsatzkräfte, keine Verletzten.",
                    ),
                    (
                        "Lagemeldung Unwetterwarnung",
                        "der DWD warnt für heute Nacht vor Sturmböen "
                        "bis 90 km/h. Die Feuerwehren sind informiert.",
                    ),
                    (
                        "Dienstplan Disponenten Dezember",
                        "anbei der Dienstplan der Disponenten "
                        "für Dezember. Tauschwünsche bitte bis Freitag.",
                    ),
                    (
                        "Wartung Funkanlage",
                        "die Funkanlage wird am Donnerstag zwischen 6 und 7 "
                        "Uhr gewartet; der Rückfallbetrieb ist vorbereitet.",
                    ),
                    (
                        "MANV-Übung: Nachbereitung",
                        "die Nachbesprechung der MANV-Übung findet "
                        "in der Leitstelle statt. Bitte bringen Sie Ihre Beobachtungen mit.",
                    ),
                ],
            ),
        ):
            inbox = self.folder(address, "inbox")
            for i, (subject, text) in enumerate(subjects):
                self.message(
                    inbox,
                    (display, address),
                    self.today - timedelta(hours=i * 7 + 1),
                    subject=subject,
                    body=f"Guten Tag,\n\n{text}\n\nMit freundlichen Grüßen",
                )
        lcal = self.folder(LEITSTELLE, "calendar")
        day = self.today.date()
        for i, subject in enumerate(("Schichtübergabe Nacht", "Übung Katastrophenschutz")):
            self.appointment(
                lcal,
                subject,
                datetime.combine(_workday(day + timedelta(days=i + 1)), time(6, 0), tzinfo=UTC),
                60,
                by=ASSISTENZ,
            )
        team = self.folder(TEAMKALENDER, "calendar")
        for i, (subject, who) in enumerate(
            (
                ("Urlaub Tom Weber", ASSISTENZ),
                ("Fortbildung Lena Koch", SACHBEARBEITUNG),
                ("Betriebsausflug", ASSISTENZ),
                ("Teambesprechung", SACHBEARBEITUNG),
            )
        ):
            start = datetime.combine(
                _workday(day + timedelta(days=2 + i * 3)), time(8, 0), tzinfo=UTC
            )
            self.appointment(
                team,
                subject,
                start,
                480 if i < 3 else 60,
                by=who,
                extra={
                    "calendar:IsAllDayEvent": i < 3,
                    "calendar:LegacyFreeBusyStatus": "OOF" if i == 0 else "Busy",
                },
            )

    def public(self) -> None:
        root = self.store.distinguished_folder("public", "publicfoldersroot")
        if root is None:
            return
        tops = {f.display_name: f for f in self.store.children(root.id)}
        if "Verwaltung" in tops:
            for i, subject in enumerate(
                (
                    "Rundschreiben 12/2026: Jahresabschluss",
                    "Dienstanweisung Aktenführung (Neufassung)",
                    "Hinweise zur Arbeitszeiterfassung",
                )
            ):
                when = self.today - timedelta(days=i * 9 + 2)
                self.add(
                    tops["Verwaltung"],
                    "IPM.Post",
                    {
                        "item:Subject": subject,
                        "item:Body": {"type": "Text", "text": "Bitte beachten Sie die Anlage."},
                        "message:From": _mb("Hauptamt", f"hauptamt@{DOMAIN}"),
                        "postitem:PostedTime": dt_text(when),
                        "item:DateTimeReceived": dt_text(when),
                        "message:IsRead": False,
                    },
                    CHEF,
                )
        if "Termine Kreistag" in tops:
            day = self.today.date()
            for i, subject in enumerate(
                ("Kreistag: Haushaltssitzung", "Bauausschuss", "Sozialausschuss")
            ):
                start = datetime.combine(
                    _workday(day + timedelta(days=7 * (i + 1))), time(14, 0), tzinfo=UTC
                )
                self.appointment(
                    tops["Termine Kreistag"], subject, start, 180, by=CHEF, location="Kreishaus"
                )
        if "Adressen extern" in tops:
            for name, email in PEOPLE[5:9]:
                self.add(
                    tops["Adressen extern"],
                    "IPM.Contact",
                    {
                        "item:Subject": name,
                        "contacts:DisplayName": name,
                        "contacts:EmailAddresses": {"EmailAddress1": email},
                        "contacts:Surname": name.split()[-1],
                    },
                    CHEF,
                )
        if "Aufgaben Bauhof" in tops:
            for i, subject in enumerate(
                ("Streugut nachbestellen", "Spielplatz Nord prüfen", "Baumkontrolle Allee")
            ):
                self.add(
                    tops["Aufgaben Bauhof"],
                    "IPM.Task",
                    {
                        "item:Subject": subject,
                        "task:Status": "NotStarted",
                        "task:DueDate": dt_text(self.today + timedelta(days=4 + i * 5)),
                    },
                    SACHBEARBEITUNG,
                )
        if "Notizen" in tops:
            self.notes(
                tops["Notizen"],
                ["Telefonliste Krisenstab aktualisiert", "WLAN-Zugang Sitzungssaal: siehe Aushang"],
                CHEF,
            )


def _room_bookings(seeder: _Seeder) -> None:
    """The room's own calendar: what its free/busy shows to the room finder."""
    from zoneinfo import ZoneInfo

    cal = seeder.folder(SITZUNGSSAAL, "calendar")
    berlin = ZoneInfo("Europe/Berlin")
    day = _workday(seeder.today.date() + timedelta(days=1))
    for hour, minutes, subject in ((10, 90, "Personalversammlung"), (14, 60, "Bürgersprechstunde")):
        seeder.appointment(
            cal,
            subject,
            datetime.combine(day, time(hour), tzinfo=berlin),
            minutes,
            by=SITZUNGSSAAL,
            location="Sitzungssaal 1",
            extra={"calendar:UID": f"sitzungssaal-{hour}"},
        )


def _wav(seconds: int) -> bytes:
    """A silent 8 kHz mono WAV of the given length (a voicemail recording stand-in)."""
    import struct

    frames = 8000 * min(seconds, 5)
    data = b"\x00\x00" * frames
    header = (
        b"RIFF"
        + struct.pack("<I", 36 + len(data))
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, 8000, 16000, 2, 16)
        + b"data"
        + struct.pack("<I", len(data))
    )
    return header + data


def seed_items(lab: Lab) -> None:
    """Fill the demo organisation's mailboxes (see the module docstring)."""
    seeder = _Seeder(lab)
    with lab.store.transaction():
        seeder.mail()
        seeder.calendar()
        seeder.meeting_request()
        seeder.contacts()
        seeder.tasks()
        seeder.notes(
            seeder.folder(CHEF, "notes"),
            [
                "Rückruf Landrat Nachbarkreis\nwegen Rettungsdienstbereich",
                "Geschenk Jubiläum Feuerwehr besorgen",
                "Ideen Neujahrsansprache: Ehrenamt, Klinikverbund, Breitband",
                "Passwort-Tresor: neue Regeln ab Januar",
            ],
            CHEF,
        )
        seeder.archive()
        seeder.functional()
        seeder.public()
        _room_bookings(seeder)
