"""The words of the log report, in Swedish (the default) and English: what
each event and each refusal reason means in plain language, door kinds, the
log verdict, and the report's own labels. protocol/reasons.py and
protocol/events.py hold the codes; a code with no words here is shown by its
stable name, never dropped."""

from __future__ import annotations

from datetime import date

from protocol import events, reasons
from tools import logcheck

LANGS = ("sv", "en")

EVENTS: dict[str, dict[int, str]] = {
    "sv": {
        events.OPENED: "dörren låstes upp",
        events.ALARM_OPEN: "dörren låstes upp (larmutryckning)",
        events.REFUSED: "nekad",
        events.RELOCKED: "låstes igen",
        events.DOOR_OPENED: "dörren öppnades",
        events.DOOR_CLOSED: "dörren stängdes",
        events.DOOR_LEFT_OPEN: "dörren stod öppen (larm)",
        events.JAMMED: "regeln fastnade",
        events.COMMISSIONED: "låset driftsattes",
        events.DECOMMISSIONED: "låset avvecklades",
        events.FACTORY_RESET: "fabriksåterställning vid låset",
        events.BOOT: "låset startade",
        events.WATCHDOG_RESET: "låset startade om av sig självt (vakthund)",
        events.TIME_SET: "klockan ställdes",
        events.CLOCK_UNTRUSTED: "klockan osäker (efter strömavbrott)",
        events.REVOCATION_UPDATED: "spärrlistan uppdaterades",
        events.BATTERY_LOW: "lågt batteri",
        events.BATTERY_CRITICAL: "batteriet nästan slut",
        events.RATE_LIMITED: "många misslyckade försök: låset väntade",
        events.LOG_READ: "loggen lästes",
        events.FRAME_ERROR: "oläsbar data mottogs",
        events.CONNECTION_TIMEOUT: "anslutningen bröts (tog för lång tid)",
        events.TIME_REJECTED: "klockuppdatering avvisades",
        events.REVOCATION_REJECTED: "spärrlisteuppdatering avvisades",
        events.PEER_SUMMARY: "fler försök och fel (räknade, se orsak)",
    },
    "en": {
        events.OPENED: "door unlocked",
        events.ALARM_OPEN: "door unlocked (alarm response)",
        events.REFUSED: "refused",
        events.RELOCKED: "locked again",
        events.DOOR_OPENED: "door opened",
        events.DOOR_CLOSED: "door closed",
        events.DOOR_LEFT_OPEN: "door left open (alarm)",
        events.JAMMED: "bolt jammed",
        events.COMMISSIONED: "lock commissioned",
        events.DECOMMISSIONED: "lock decommissioned",
        events.FACTORY_RESET: "factory reset at the lock",
        events.BOOT: "lock started",
        events.WATCHDOG_RESET: "lock restarted by itself (watchdog)",
        events.TIME_SET: "clock set",
        events.CLOCK_UNTRUSTED: "clock not trusted (after power loss)",
        events.REVOCATION_UPDATED: "block list updated",
        events.BATTERY_LOW: "battery low",
        events.BATTERY_CRITICAL: "battery critical",
        events.RATE_LIMITED: "many failed attempts: slowed down",
        events.LOG_READ: "log read",
        events.FRAME_ERROR: "unreadable data received",
        events.CONNECTION_TIMEOUT: "connection timed out",
        events.TIME_REJECTED: "clock update refused",
        events.REVOCATION_REJECTED: "block list update refused",
        events.PEER_SUMMARY: "more attempts and errors by peers (counted, see reason)",
    },
}

# Events whose detail changes what a reader should be told.
DETAILS: dict[str, dict[tuple[int, int], str]] = {
    "sv": {
        (events.DOOR_OPENED, events.DOOR_BY_HAND): "dörren öppnades för hand "
                                                   "(ingen digital upplåsning)",
        (events.DOOR_OPENED, events.DOOR_FORCED): "dörren bröts upp (regeln var låst)",
        (events.LOG_READ, events.LOG_READ_SERIAL): "loggen lästes av installatören (kabel)",
        (events.TIME_SET, events.TIME_SET_FORCED): "klockan ställdes av installatören med "
                                                   "knappen (tvingat: den kan ha gått bakåt)",
    },
    "en": {
        (events.DOOR_OPENED, events.DOOR_BY_HAND): "door opened by hand (no digital opening)",
        (events.DOOR_OPENED, events.DOOR_FORCED): "door forced open (the bolt was locked)",
        (events.LOG_READ, events.LOG_READ_SERIAL): "log read by the installer (serial)",
        (events.TIME_SET, events.TIME_SET_FORCED): "clock set by the installer with the button "
                                                   "(forced: it may have gone back)",
    },
}

REASONS: dict[str, dict[int, str]] = {
    "sv": {
        reasons.ALLOW: "tillåten",
        reasons.MALFORMED: "nyckeln skickade något låset inte kunde läsa",
        reasons.BAD_SIGNATURE: "nyckeln är inte utfärdad av den här verksamheten "
                               "(signaturen stämmer inte)",
        reasons.EXPIRED: "nyckeln hade gått ut (passet var slut)",
        reasons.NOT_YET_VALID: "nyckeln gällde inte än (passet hade inte börjat)",
        reasons.WRONG_LOCK: "nyckeln gäller inte den här dörren",
        reasons.REVOKED: "nyckeln är spärrad",
        reasons.SCOPE: "nyckeln saknar behörighet till det den försökte",
        reasons.CLOCK_UNTRUSTED: "låsets klocka var osäker",
        reasons.LIFETIME_TOO_LONG: "nyckeln gällde längre än ett pass (högst 24 timmar)",
        reasons.BAD_PROOF: "fel personlig kod, eller nyckeln gäller inte här",
        reasons.REPLAY: "ett gammalt meddelande spelades upp igen",
        reasons.CHALLENGE_EXPIRED: "nyckeln svarade för sent",
        reasons.RATE_LIMITED: "för många försök: låset bad nyckeln vänta",
        reasons.NOT_COMMISSIONED: "låset var inte driftsatt",
        reasons.ISSUED_BEFORE_CUTOFF: "nyckeln utfärdades före en spärr: en ny nyckel behövs",
        reasons.WRONG_ISSUER: "nyckeln kommer från en annan verksamhet",
        reasons.UNSUPPORTED: "nyckeln bad om något låset inte kan",
        reasons.ROLLBACK: "en äldre spärrlista avvisades",
        reasons.BUSY: "låset var upptaget med en annan nyckel",
        reasons.JAMMED: "regeln satt fast",
        reasons.BUTTON_REQUIRED: "knappen på låset trycktes inte in",
        reasons.ALREADY_COMMISSIONED: "låset var redan driftsatt",
        reasons.TIME_OUT_OF_RANGE: "en tid utanför det låset kan hantera",
        reasons.TOKEN_BURNED: "spärrad efter för många fel koder: en ny nyckel behövs",
    },
    "en": {
        reasons.ALLOW: "allowed",
        reasons.MALFORMED: "the key sent something the lock could not read",
        reasons.BAD_SIGNATURE: "the key was not issued by this site (its signature does not "
                               "check)",
        reasons.EXPIRED: "the key had expired (the shift was over)",
        reasons.NOT_YET_VALID: "the key was not valid yet (the shift had not begun)",
        reasons.WRONG_LOCK: "the key is not for this door",
        reasons.REVOKED: "the key is blocked",
        reasons.SCOPE: "the key lacks the permission for what it tried",
        reasons.CLOCK_UNTRUSTED: "the lock's clock was not trusted",
        reasons.LIFETIME_TOO_LONG: "the key was valid for longer than a shift (24 hours at most)",
        reasons.BAD_PROOF: "wrong personal code, or this key is not valid here",
        reasons.REPLAY: "an old message was played again",
        reasons.CHALLENGE_EXPIRED: "the key answered too late",
        reasons.RATE_LIMITED: "too many attempts: the lock made the key wait",
        reasons.NOT_COMMISSIONED: "the lock was not commissioned",
        reasons.ISSUED_BEFORE_CUTOFF: "the key was issued before a block: a new key is needed",
        reasons.WRONG_ISSUER: "the key comes from another site",
        reasons.UNSUPPORTED: "the key asked for something the lock cannot do",
        reasons.ROLLBACK: "an older block list was refused",
        reasons.BUSY: "the lock was busy with another key",
        reasons.JAMMED: "the bolt was jammed",
        reasons.BUTTON_REQUIRED: "the lock's button was not pressed",
        reasons.ALREADY_COMMISSIONED: "the lock was already commissioned",
        reasons.TIME_OUT_OF_RANGE: "a time outside what the lock can hold",
        reasons.TOKEN_BURNED: "blocked after too many wrong codes: a new key is needed",
    },
}

DOORS: dict[str, dict[str, str]] = {
    "sv": {"apartment": "lägenhetsdörr", "entrance": "entré", "waste-room": "soprum",
           "key-box": "nyckelgömma", "medicine-cabinet": "medicinskåp",
           "laundry-room": "tvättstuga"},
    "en": {"apartment": "apartment door", "entrance": "entrance", "waste-room": "waste room",
           "key-box": "key box", "medicine-cabinet": "medicine cabinet",
           "laundry-room": "laundry room"},
}

WEEKDAYS = {"sv": ("måndag", "tisdag", "onsdag", "torsdag", "fredag", "lördag", "söndag"),
            "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday",
                   "Sunday")}
MONTHS = {"sv": ("januari", "februari", "mars", "april", "maj", "juni", "juli", "augusti",
                 "september", "oktober", "november", "december"),
          "en": ("January", "February", "March", "April", "May", "June", "July", "August",
                 "September", "October", "November", "December")}

# The yes/no values of the CSV (README: "Log reports").
YES_NO = {"sv": ("ja", "nej"), "en": ("yes", "no")}

LABELS: dict[str, dict[str, str]] = {
    "sv": {
        "title": "Loggningsrapport", "lock": "Lås", "client": "Brukare", "staff": "Personal",
        "unit": "Enhet", "period": "Period", "start": "början", "now": "nu",
        "times": "Tider är lokal tid", "generated": "Skapad", "site": "Verksamhet",
        "verdict": "Loggens fullständighet", "attention": "Att uppmärksamma",
        "no_attention": "Inga larmöppningar, uppbrutna dörrar eller fel på låsen.",
        "chart": "Besök och nekade försök per dag", "per_day": "Per dag",
        "per_staff": "Per person", "events": "Händelser", "day": "Dag",
        "openings": "Upplåsningar", "refusals": "Nekade", "alarms": "Larm",
        "forced": "Uppbrutna", "name": "Namn", "provider": "Utförare", "doors": "Dörrar",
        "first": "Första", "last": "Sista", "time": "Tid", "door": "Dörr",
        "what": "Vad hände", "reason": "Orsak", "count": "Antal",
        "no_events": "Inga händelser under perioden.", "times_n": "gånger",
        "alarm_mark": "larm", "forced_mark": "uppbruten", "booking_mark": "bokning",
        "clock_mark": "låsets klocka osäker", "unknown_key": "okänd nyckel",
        "complete": "Komplett", "incomplete": "INTE komplett",
        "doors_in_report": "Dörrar i rapporten", "no_doors": "Inga dörrar hör till detta urval.",
        "alarm_keys": "Larmnycklar", "issued": "Utfärdad", "valid_until": "Giltig till",
        "issued_by": "Utfärdad av", "why": "Anledning", "used": "Larmöppningar",
        "no_alarm_keys": "Inga larmnycklar utfärdade under perioden.",
    },
    "en": {
        "title": "Log report", "lock": "Lock", "client": "Client", "staff": "Staff",
        "unit": "Unit", "period": "Period", "start": "start", "now": "now",
        "times": "Times are local time", "generated": "Generated", "site": "Site",
        "verdict": "Completeness of the log", "attention": "Needs attention",
        "no_attention": "No alarm openings, forced doors or lock faults.",
        "chart": "Visits and refused attempts per day", "per_day": "Per day",
        "per_staff": "Per person", "events": "Events", "day": "Day",
        "openings": "Openings", "refusals": "Refused", "alarms": "Alarm",
        "forced": "Forced", "name": "Name", "provider": "Provider", "doors": "Doors",
        "first": "First", "last": "Last", "time": "Time", "door": "Door",
        "what": "What happened", "reason": "Reason", "count": "Count",
        "no_events": "No events in this period.", "times_n": "times",
        "alarm_mark": "alarm", "forced_mark": "forced", "booking_mark": "booking",
        "clock_mark": "lock clock not trusted", "unknown_key": "unknown key",
        "complete": "Complete", "incomplete": "NOT complete",
        "doors_in_report": "Doors in this report", "no_doors": "No doors belong to this choice.",
        "alarm_keys": "Alarm keys", "issued": "Issued", "valid_until": "Valid until",
        "issued_by": "Issued by", "why": "Why", "used": "Alarm openings",
        "no_alarm_keys": "No alarm keys were issued in this period.",
    },
}

GAP_CAUSES_SV = {
    logcheck.OVERWRITTEN: "skrevs över i låset innan de hämtades",
    logcheck.BEFORE_FIRST: "före den första hämtade posten: aldrig hämtade",
    logcheck.MISSING: "saknas i den hämtade loggen (inte hämtade, eller borttagna)",
    logcheck.FACTORY_RESET: "förlorade vid en fabriksåterställning av låset",
    logcheck.DECOMMISSIONED_ELSEWHERE: "hämtades inte innan låset avvecklades med ett "
                                       "annat verktyg",
    logcheck.REPLACED: "okända: låset driftsattes på nytt utan spår av den här identiteten "
                       "(nytt kretskort eller raderat minne)",
}


def event_text(lang: str, code: int, detail: int) -> str:
    return (DETAILS[lang].get((code, detail)) or EVENTS[lang].get(code)
            or events.NAMES.get(code, f"event-{code}"))


def reason_text(lang: str, code: int) -> str:
    return REASONS[lang].get(code) or reasons.name(code)


def door_text(lang: str, door: str) -> str:
    return DOORS[lang].get(door, door)


def day_text(lang: str, iso_day: str) -> str:
    day = date.fromisoformat(iso_day)
    return f"{WEEKDAYS[lang][day.weekday()]} {day.day} {MONTHS[lang][day.month - 1]} {day.year}"


def verdict_text(lang: str, v: logcheck.EpochVerdict) -> str:
    """The log verdict (tools/logcheck.py) in the report's language."""
    if lang == "en":
        return v.text
    if v.complete:
        if v.records == 0 and v.since is None:
            return "Inget hämtat än; inget saknas."
        upto = f" till och med post {v.last_seq}" if v.last_seq else ""
        if v.since is not None:
            return (f"Komplett sedan {v.since}{upto}; äldre poster raderade efter "
                    f"{v.retention_days} dagar (gallring). MAC-kedjan stämmer.")
        return f"Komplett från driftsättningen{upto}; MAC-kedjan stämmer."
    parts = []
    for g in v.gaps:
        span = (f"post {g.first}" if g.last == g.first else
                f"poster {g.first}-{g.last}" if g.last is not None else
                f"poster från {g.first} och framåt")
        cause = GAP_CAUSES_SV.get(g.cause)
        if cause is None and g.cause.startswith(logcheck.BEFORE_FIRST):
            cause = GAP_CAUSES_SV[logcheck.BEFORE_FIRST] + " (kedjans början är okänd)"
        elif cause is None and g.cause.startswith("cannot be proven"):
            cause = "kan inte bevisas: posten om driftsättningen finns inte"
        parts.append(f"{span} {cause or g.cause}")
    if v.altered:
        parts.append(f"poster {v.altered} har ändrats")
    if v.unverifiable:
        parts.append(f"poster {v.unverifiable} kan inte kontrolleras")
    if v.reordered:
        parts.append(f"poster {v.reordered} i fel ordning eller upprepade")
    return "INTE komplett: " + "; ".join(parts) + "."
