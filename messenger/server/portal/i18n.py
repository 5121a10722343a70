"""The portal's words in English and German; the language comes from the `lang` cookie (the
switch in the page header), else from Accept-Language, else English."""

from __future__ import annotations

LANGUAGES = ("en", "de")

WORDS: dict[str, tuple[str, str]] = {
    "title": ("Messenger administration", "Messenger-Verwaltung"),
    "skip": ("Skip to content", "Zum Inhalt springen"),
    "language": ("Language", "Sprache"),
    "switch": ("Deutsch", "English"),
    "login": ("Log in", "Anmelden"),
    "logout": ("Log out", "Abmelden"),
    "email": ("E-mail address", "E-Mail-Adresse"),
    "password": ("Password", "Passwort"),
    "password_again": ("Password again", "Passwort wiederholen"),
    "display_name": ("Display name", "Anzeigename"),
    "login_failed": ("Wrong e-mail or password.", "E-Mail-Adresse oder Passwort falsch."),
    "not_admin": (
        "This portal is for administrators; use the app to chat.",
        "Dieses Portal ist für Administratoren; zum Schreiben nutzen Sie die App.",
    ),
    "expired": (
        "Your session has ended; please log in again.",
        "Ihre Sitzung ist abgelaufen; bitte melden Sie sich erneut an.",
    ),
    "csrf": (
        "The form was outdated or came from elsewhere; nothing was changed. Please try again.",
        "Das Formular war veraltet oder kam von außerhalb; nichts wurde geändert. "
        "Bitte erneut versuchen.",
    ),
    "saved": ("Saved.", "Gespeichert."),
    "accept_title": ("Set your password", "Passwort festlegen"),
    "accept": ("Set password", "Passwort festlegen"),
    "accepted": (
        "Your password is set. Administrators can log in here; everyone can log in with the app.",
        "Ihr Passwort ist gesetzt. Administratoren melden sich hier an, alle in der App.",
    ),
    "mismatch": ("The passwords differ.", "Die Passwörter stimmen nicht überein."),
    "too_short": ("Use at least 8 characters.", "Mindestens 8 Zeichen verwenden."),
    "users": ("Users", "Benutzer"),
    "groups": ("Managed groups", "Verwaltete Gruppen"),
    "alarm_lists": ("Alarm lists", "Alarmlisten"),
    "tier1": ("First tier (alarmed at once)", "Erste Stufe (sofort alarmiert)"),
    "tier2": ("Second tier (after the escalation time)", "Zweite Stufe (nach der Eskalationszeit)"),
    "repeat_seconds": ("Repeat every (seconds)", "Wiederholen alle (Sekunden)"),
    "escalation_seconds": ("Escalate after (seconds)", "Eskalieren nach (Sekunden)"),
    "emergency": ("Emergency list (panic button)", "Notfallliste (Panikknopf)"),
    "create_list": ("Create alarm list", "Alarmliste anlegen"),
    "tier": ("Tier", "Stufe"),
    "bots": ("Bots", "Bots"),
    "scopes": ("Scopes", "Berechtigungen"),
    "rate": ("Messages per minute", "Nachrichten pro Minute"),
    "webhook": ("Webhook URL (https, optional)", "Webhook-URL (https, optional)"),
    "create_bot": ("Create bot", "Bot anlegen"),
    "token_once": (
        "Copy the token now; it is not shown again.",
        "Kopieren Sie das Token jetzt; es wird nicht erneut angezeigt.",
    ),
    "token": ("Token", "Token"),
    "webhook_secret": ("Webhook secret", "Webhook-Geheimnis"),
    "policies": ("Policies", "Richtlinien"),
    "branding": ("Branding", "Erscheinungsbild"),
    "templates": ("E-mail templates", "E-Mail-Vorlagen"),
    "app_config": ("App configuration", "App-Konfiguration"),
    "usage": ("Usage and quota", "Nutzung und Kontingent"),
    "audit": ("Audit", "Audit"),
    "tenants": ("Tenants", "Mandanten"),
    "health": ("Instance health", "Zustand der Instanz"),
    "invite": ("Invite", "Einladen"),
    "invite_user": ("Invite a user", "Benutzer einladen"),
    "role": ("Role", "Rolle"),
    "role_user": ("User", "Benutzer"),
    "role_tenant_admin": ("Tenant administrator", "Mandanten-Administrator"),
    "role_instance_admin": ("Instance administrator", "Instanz-Administrator"),
    "status": ("Status", "Status"),
    "active": ("active", "aktiv"),
    "disabled": ("disabled", "deaktiviert"),
    "invited": ("invited", "eingeladen"),
    "actions": ("Actions", "Aktionen"),
    "disable": ("Disable", "Deaktivieren"),
    "enable": ("Re-enable", "Wieder aktivieren"),
    "delete": ("Delete", "Löschen"),
    "reset_devices": ("Reset devices", "Geräte zurücksetzen"),
    "csv_import": ("Import users from CSV", "Benutzer aus CSV importieren"),
    "csv_help": (
        "One user per line: e-mail, display name, role (user or tenant_admin).",
        "Ein Benutzer pro Zeile: E-Mail, Anzeigename, Rolle (user oder tenant_admin).",
    ),
    "csv_file": ("CSV file", "CSV-Datei"),
    "preview": ("Preview", "Vorschau"),
    "line": ("Line", "Zeile"),
    "problem": ("Problem", "Problem"),
    "ok": ("ready", "bereit"),
    "import_valid": ("Invite the valid rows", "Gültige Zeilen einladen"),
    "imported": ("users invited", "Benutzer eingeladen"),
    "skipped": ("rows skipped", "Zeilen übersprungen"),
    "name": ("Name", "Name"),
    "members": ("Members", "Mitglieder"),
    "admins": ("Group administrators", "Gruppen-Administratoren"),
    "emails_help": ("E-mail addresses, one per line.", "E-Mail-Adressen, eine pro Zeile."),
    "create_group": ("Create group", "Gruppe anlegen"),
    "add_members": ("Add members", "Mitglieder hinzufügen"),
    "remove": ("Remove", "Entfernen"),
    "make_admin": ("Make admin", "Zum Admin machen"),
    "make_member": ("Make member", "Zum Mitglied machen"),
    "retention_days": ("Retention (days)", "Aufbewahrung (Tage)"),
    "bounds": ("allowed", "erlaubt"),
    "quota": ("Quota per user", "Kontingent pro Benutzer"),
    "partners": ("Cross-tenant partners", "Mandantenübergreifende Partner"),
    "partner_help": (
        "Messages cross tenants only when both tenants allow each other.",
        "Nachrichten gehen nur zwischen Mandanten, die einander beide erlauben.",
    ),
    "allow": ("Allow", "Erlauben"),
    "withdraw": ("Withdraw", "Zurückziehen"),
    "mutual": ("both allow", "beidseitig"),
    "audit_on": ("Four-eyes audit is on.", "Vier-Augen-Audit ist eingeschaltet."),
    "audit_off": ("Four-eyes audit is off.", "Vier-Augen-Audit ist ausgeschaltet."),
    "audit_switch_on": ("Switch audit on", "Audit einschalten"),
    "audit_switch_off": ("Switch audit off", "Audit ausschalten"),
    "save": ("Save", "Speichern"),
    "primary_colour": ("Primary colour", "Hauptfarbe"),
    "accent_colour": ("Accent colour", "Akzentfarbe"),
    "logo": ("Logo (PNG or JPEG, at most 256 KiB)", "Logo (PNG oder JPEG, höchstens 256 KiB)"),
    "remove_logo": ("Remove the logo", "Logo entfernen"),
    "subject": ("Subject", "Betreff"),
    "body": ("Text", "Text"),
    "template_help": (
        "Fields: {link} (required), {tenant}, {name}.",
        "Felder: {link} (Pflicht), {tenant}, {name}.",
    ),
    "key": ("Key", "Schlüssel"),
    "value": ("Value (JSON or text)", "Wert (JSON oder Text)"),
    "set": ("Set", "Setzen"),
    "config_help": (
        "Dotted keys such as tui.page_size, delivered to managed devices and the terminal app.",
        "Schlüssel mit Punkten wie tui.page_size, an verwaltete Geräte und die Terminal-App.",
    ),
    "used": ("Used", "Belegt"),
    "of": ("of", "von"),
    "log": ("Audit log", "Audit-Protokoll"),
    "when": ("When", "Wann"),
    "who": ("Who", "Wer"),
    "what": ("What", "Was"),
    "details": ("Details", "Details"),
    "requests": ("Audit requests", "Audit-Anfragen"),
    "none": ("None.", "Keine."),
    "create_tenant": ("Create tenant", "Mandant anlegen"),
    "domains": ("Domains", "Domänen"),
    "domain": ("Domain", "Domäne"),
    "add_domain": ("Add domain", "Domäne hinzufügen"),
    "storage": ("Storage extensions (500 GB each)", "Speichererweiterungen (je 500 GB)"),
    "retention_bounds": ("Retention bounds (days)", "Aufbewahrungsgrenzen (Tage)"),
    "min": ("Minimum", "Minimum"),
    "max": ("Maximum", "Maximum"),
    "disable_tenant": ("Disable tenant", "Mandant deaktivieren"),
    "enable_tenant": ("Enable tenant", "Mandant aktivieren"),
    "node": ("Node", "Knoten"),
    "database": ("Database", "Datenbank"),
    "redis": ("Redis", "Redis"),
    "queues": ("Queue depths", "Warteschlangen"),
    "bridge": ("Bridge", "Brücke"),
    "reachable": ("reachable", "erreichbar"),
    "unreachable": ("unreachable", "nicht erreichbar"),
    "not_configured": ("not configured", "nicht eingerichtet"),
    "not_reported": ("not reported to this server", "diesem Server nicht gemeldet"),
    "confirm_delete": ("Delete for good", "Endgültig löschen"),
    "open": ("Open", "Öffnen"),
    "back": ("Back", "Zurück"),
    "tenant": ("Tenant", "Mandant"),
    "users_count": ("Users", "Benutzer"),
    "chart_title": ("Storage used per user", "Belegter Speicher pro Benutzer"),
    "user_quota": ("Quota", "Kontingent"),
    "own_quota": ("set for this user", "für diesen Benutzer gesetzt"),
    "default_quota": ("tenant default", "Standard des Mandanten"),
    "quota_gb": ("Quota in GB", "Kontingent in GB"),
    "set_quota": ("Set quota", "Kontingent setzen"),
    "clear_quota": ("Use default", "Standard verwenden"),
    "user_quota_help": (
        "Up to the tenant's quota per user a user's quota is always possible; beyond it, all "
        "users' quotas together must fit the tenant's storage.",
        "Bis zum Kontingent pro Benutzer des Mandanten ist jedes Kontingent möglich; darüber "
        "müssen alle Kontingente zusammen in den Speicher des Mandanten passen.",
    ),
}


def pick(cookie: str | None, accept_language: str) -> str:
    if cookie in LANGUAGES:
        return cookie
    ranked: list[tuple[float, str]] = []
    for part in accept_language.split(","):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        ranked.append((q, tag.strip().lower()[:2]))
    for _, lang in sorted(ranked, key=lambda r: -r[0]):
        if lang in LANGUAGES:
            return lang
    return "en"


def translator(lang: str) -> dict[str, str]:
    index = LANGUAGES.index(lang)
    return {key: pair[index] for key, pair in WORDS.items()}
