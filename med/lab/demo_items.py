"""Items of the demo organisation: a boss's busy mailbox and calendar, and some shared ones.

Deterministic: a seeded random generator picks senders, subjects, flags and attachments, and
dates are laid out backwards from the lab's current day, so two labs seeded on the same day
hold the same items. Called by ``med.lab.demo.seed`` inside its transaction.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from med.lab import items as store_items
from med.lab.ews.itemxml import dt_text
from med.lab.recurrence import Recurrence

if TYPE_CHECKING:
    from med.lab.lab import Lab
    from med.lab.store import Folder

DOMAIN = "musterstadt.example"
CHEF = f"chef@{DOMAIN}"
ASSISTENZ = f"assistenz@{DOMAIN}"
SACHBEARBEITUNG = f"sachbearbeitung@{DOMAIN}"
POSTSTELLE = f"poststelle@{DOMAIN}"
LEITSTELLE = f"leitstelle@{DOMAIN}"
TEAMKALENDER = f"teamkalender@{DOMAIN}"

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
TOPICS_DE = [
    "Haushaltsplan {y}: Entwurf zur Abstimmung",
    "Sitzung des Kreisausschusses am {d}",
    "Rückfrage zum Bauantrag Nr. {n}",
    "Pressetermin Eröffnung Rettungswache",
    "Personalangelegenheit – vertraulich",
    "Einladung: Klausurtagung Verwaltungsvorstand",
    "Protokoll der Dienstbesprechung vom {d}",
    "Fördermittelbescheid Breitbandausbau",
    "Beschwerde Bürgerin wegen Straßenreinigung",
    "Winterdienst: Einsatzplanung {y}",
    "Bettenkapazität Klinikum – Lagebericht",
    "Stellungnahme zum Nahverkehrsplan",
    "Urlaubsvertretung KW {n}",
    "Vorlage für den Kreistag: Schulentwicklungsplan",
    "Digitalisierung der Bauakten – Zwischenstand",
    "Terminanfrage Landrat Nachbarkreis",
    "Dienstwagen: Inspektion fällig",
    "Jahresbericht Gesundheitsamt {y}",
]
TOPICS_EN = [
    "Partnership visit: agenda for {d}",
    "EU regional fund: reporting deadline",
    "Follow-up on our call about the hospital network",
    "Conference invitation: Smart Regions {y}",
    "Draft MoU for review",
    "Quarterly figures – please confirm",
]
BODY_DE = (
    "Sehr geehrte Frau Dr. Berg,\n\nanbei erhalten Sie die Unterlagen zu o. g. Vorgang mit "
    "der Bitte um Kenntnisnahme und ggf. Rückmeldung bis Ende der Woche.\n\n"
    "Mit freundlichen Grüßen\n{name}"
)
BODY_EN = (
    "Dear Dr. Berg,\n\nplease find the documents attached. I would appreciate your feedback "
    "by the end of next week.\n\nKind regards,\n{name}"
)
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


def _mb(name: str, email: str) -> dict[str, str]:
    return {"name": name, "email": email}


class _Seeder:
    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.store = lab.store
        self.rng = random.Random(20261125)
        now = lab.now().astimezone(UTC)
        self.today = datetime.combine(now.date(), time(7, 0), tzinfo=UTC)

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
    ) -> store_items.Item:
        rng = self.rng
        name, email = sender or rng.choice(PEOPLE)
        topic = subject or rng.choice(TOPICS_EN if english else TOPICS_DE).format(
            y=when.year + rng.choice((0, 1)),
            d=(when + timedelta(days=rng.randint(2, 20))).strftime("%d.%m.%Y"),
            n=rng.randint(10, 99),
        )
        body = (BODY_EN if english else BODY_DE).format(name=name)
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
        if rng.random() < 0.12:
            atts = rng.sample(ATTACHMENTS, rng.randint(1, 2))
        return self.add(folder, "IPM.Note", props, email, atts)

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
        private_subjects = [
            "Arztbefund – persönlich",
            "Privat: Wohnungsangelegenheit",
            "Persönlich: Glückwünsche zum Geburtstag",
            "Familienfeier Samstag",
        ]
        for i, subject in enumerate(private_subjects):
            item = self.message(
                inbox,
                owner,
                self.today - timedelta(days=i * 5 + 1, hours=3),
                sender=("Michael Berg", "michael.berg@privat.example"),
                subject=subject,
            )
            item.props["item:Sensitivity"] = "Private"
            store_items.save_item(self.store, item, self.lab.now())
        sent = self.folder(CHEF, "sentitems")
        for i in range(12):
            name, email = self.rng.choice(PEOPLE)
            when = self.today - timedelta(days=i * 3, hours=2)
            self.add(
                sent,
                "IPM.Note",
                {
                    "item:Subject": "AW: " + self.rng.choice(TOPICS_DE).format(y=2027, d="", n=i),
                    "item:Body": {"type": "Text", "text": "Vielen Dank, einverstanden.\n\nA. Berg"},
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
        # Voicemail as Unified Messaging leaves it: a message with the recording attached.
        voicemail = self.folder(CHEF, "voicemail")
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
                at(day + timedelta(days=offset), hour),
                minutes,
                by=CHEF,
                location=location,
            )
        self.appointment(
            cal,
            "Arzttermin",
            at(day + timedelta(days=2), 17),
            60,
            by=CHEF,
            location="Praxis Dr. Lange",
            extra={"item:Sensitivity": "Private"},
        )
        self.appointment(
            cal,
            "Familie: Elternabend",
            at(day + timedelta(days=5), 19),
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
        budget_start = day + timedelta(days=14)
        self.appointment(
            cal,
            "Haushaltsberatung",
            at(budget_start, 8, 30),
            30,
            by=CHEF,
            extra={
                "calendar:Recurrence": Recurrence(
                    "daily", budget_start, "numbered", count=10
                ).to_json()
            },
        )
        # Yearly: Neujahrsempfang on 10 January, and the partner-city anniversary.
        jan = date(day.year, 1, 10)
        self.appointment(
            cal,
            "Neujahrsempfang",
            at(jan, 18),
            180,
            by=CHEF,
            location="Kreishaus",
            extra={
                "calendar:Recurrence": Recurrence(
                    "absolute_yearly", jan, "no_end", day_of_month=10, month="January"
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
                    days_of_week=("Saturday",),
                    day_of_week_index="First",
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
                    "absolute_monthly", day.replace(day=1), "numbered", day_of_month=28, count=12
                ).to_json()
            },
        )
        # A meeting chef organised, with answers from her staff.
        self.appointment(
            cal,
            "Vorbereitung Kreisausschuss",
            at(day + timedelta(days=3), 10),
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

    def meeting_request(self) -> None:
        """A meeting Lena Koch sends to chef: pending in chef's and the delegate's inbox."""
        from med.lab.ews.meetings import invite
        from med.lab.ews.soap import EwsContext

        cal = self.folder(SACHBEARBEITUNG, "calendar")
        start = datetime.combine(self.today.date() + timedelta(days=4), time(13, 0), tzinfo=UTC)
        item = self.appointment(
            cal,
            "Abstimmung Fördermittel Breitband",
            start,
            45,
            by=SACHBEARBEITUNG,
            location="Raum 112",
            extra={
                "calendar:IsMeeting": True,
                "calendar:MeetingRequestWasSent": True,
                "calendar:MyResponseType": "Organizer",
                "calendar:Organizer": _mb("Lena Koch", SACHBEARBEITUNG),
                "calendar:RequiredAttendees": [
                    {"name": "Dr. Anna Berg", "email": CHEF, "response": "Unknown"},
                ],
            },
        )
        invite(EwsContext(lab=self.lab, user=SACHBEARBEITUNG), item, self.lab.now())

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
                    "Eingang: Widerspruch Gebührenbescheid",
                    "Eingang: Anfrage Akteneinsicht",
                    "Eingang: Rechnung Stadtwerke",
                    "Posteingang Ministerium (Scan)",
                    "Zustellung: Gerichtspost",
                ],
            ),
            (
                LEITSTELLE,
                "Leitstelle",
                [
                    "Einsatzbericht Großbrand Gewerbegebiet",
                    "Lagemeldung Unwetterwarnung",
                    "Dienstplan Disponenten Dezember",
                    "Wartung Funkanlage",
                    "MANV-Übung: Nachbereitung",
                ],
            ),
        ):
            inbox = self.folder(address, "inbox")
            for i, subject in enumerate(subjects):
                self.message(
                    inbox,
                    (display, address),
                    self.today - timedelta(hours=i * 7 + 1),
                    subject=subject,
                )
        lcal = self.folder(LEITSTELLE, "calendar")
        day = self.today.date()
        for i, subject in enumerate(("Schichtübergabe Nacht", "Übung Katastrophenschutz")):
            self.appointment(
                lcal,
                subject,
                datetime.combine(day + timedelta(days=i + 1), time(6, 0), tzinfo=UTC),
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
            start = datetime.combine(day + timedelta(days=2 + i * 3), time(8, 0), tzinfo=UTC)
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
                start = datetime.combine(day + timedelta(days=7 * (i + 1)), time(14, 0), tzinfo=UTC)
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
