"""Benchmark: matching that learns against the rules alone, on a labelled household archive.

    .venv/bin/python bench/matching.py [--seed 18] [--split 2024-07-01] [--large 5000]

Builds the project's own labelled set: five years (2021-2025) of the paper of a household in
Munich, from 19 correspondents (employer, bank, tax office, insurers, doctors, utilities,
landlord, shops, a charity), each writing its own recurring kinds of documents (payslips,
statements, invoices, policies, notices, receipts, reminders, offers) with varied wording,
amounts, dates and reference numbers; about a third are "scanned" (OCR noise: rn/m, l/1,
lost umlauts, split words). Labels are what the owner filed them as: a type, a
correspondent, and tags ("insurance", "car", "health", "house", "utilities", "work",
"tax 2023", ...). As in life, the archive changes: the phone company redesigns its
invoice, the car insurance moves to another insurer and a new dentist appears in the
last year, so some documents to come are of kinds the past never showed.

Splits by time (train on the documents before ``--split``, test on those after: the
held-out part), and prints per field the accuracy of

- the rules alone (``RulesExtractor``: its type and correspondent mapped onto the owner's
  names by a normalised match, its own tags where they equal one of the owner's),
- the classifier (its best label; tags from probability 0.5),
- the classifier above its confidence threshold: coverage (share of documents it would set)
  and precision (share of those right), for a sweep of thresholds,

the training time and model size, the time to suggest against the rules' time for the same
documents (ratio, timed in the same run), the training time on ``--large`` documents, and a
learning curve (10/25/50/100/200 training documents, three random draws each), from which
documents/matching/defaults.py takes MATCHING_MIN_DOCUMENTS and the threshold.
Deterministic for a seed (timings aside).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import tempfile
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "docuelevate.settings")
os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("WORKDIR", tempfile.mkdtemp(prefix="bench-matching-"))

if TYPE_CHECKING:
    from documents.matching import Suggestions, TrainedMatcher, TrainingSample

FIRST_DAY, LAST_DAY = date(2021, 1, 1), date(2025, 12, 31)
CURVE = (10, 25, 50, 100, 200)
CURVE_DRAWS = 3
THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
TAG_DECISION = 0.5
SCANNED_SHARE = 0.35

# --- Who writes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Household:
    first: str
    partner: str
    surname: str
    street: str
    city: str
    employer_id: int

    def recipient(self, rng: random.Random, *, both: bool = False) -> list[str]:
        if both:
            name = f"{self.first} und {self.partner} {self.surname}"
        else:
            name = f"{rng.choice(['Frau', 'Frau', ''])} {self.first} {self.surname}".strip()
        return [name, self.street, self.city]


SURNAMES = (
    "Brandt",
    "Keller",
    "Hoffmann",
    "Schulz",
    "Wagner",
    "Becker",
    "Richter",
    "Krause",
    "Lang",
    "Vogel",
)
FIRSTS = ("Julia", "Anna", "Sabine", "Laura", "Katrin", "Miriam", "Petra", "Sarah")
PARTNERS = ("Thomas", "Jan", "Markus", "Stefan", "Daniel", "Felix", "Tobias", "Lukas")
STREETS = ("Lindenstraße", "Ahornweg", "Bergstraße", "Schillerplatz", "Isartalstraße", "Rosenheimer Straße")
CITIES = ("81545 München", "81371 München", "80469 München", "82008 Unterhaching", "85521 Ottobrunn")


def household(rng: random.Random) -> Household:
    return Household(
        first=rng.choice(FIRSTS),
        partner=rng.choice(PARTNERS),
        surname=rng.choice(SURNAMES),
        street=f"{rng.choice(STREETS)} {rng.randint(1, 80)}{rng.choice(['', '', 'a', 'b'])}",
        city=rng.choice(CITIES),
        employer_id=rng.randint(10000, 99999),
    )


@dataclass(frozen=True)
class Draft:
    """What one correspondent writes, before layout: letterhead, heading, lines of the body."""

    letterhead: list[str]
    heading: str
    facts: list[tuple[str, str]]
    body: list[str]
    footer: list[str]
    salutation: bool = True
    recipient_both: bool = False


Writer = Callable[[random.Random, date, Household], Draft]


@dataclass(frozen=True)
class Kind:
    """A recurring kind of document: who, filed as what, how often, written how."""

    correspondent: str
    document_type: str
    tags: tuple[str, ...]
    write: Writer
    per_year: float  # 12 = monthly, on a day near ``day``; otherwise that many at random
    day: int = 0
    months: tuple[int, ...] = ()  # yearly kinds: in these months
    tax: int | None = None  # tags "tax <year + tax>": the year the document counts for
    since: date = FIRST_DAY
    until: date = LAST_DAY


def money(rng: random.Random, low: float, high: float) -> str:
    value = f"{rng.uniform(low, high):,.2f}"
    return value.replace(",", "X").replace(".", ",").replace("X", ".") + " " + rng.choice(["€", "EUR", "€"])


def de_date(day: date) -> str:
    return day.strftime("%d.%m.%Y")


MONTHS = (
    "Januar",
    "Februar",
    "März",
    "April",
    "Mai",
    "Juni",
    "Juli",
    "August",
    "September",
    "Oktober",
    "November",
    "Dezember",
)


def greeting(rng: random.Random, *phrases: str) -> str:
    return rng.choice(phrases or ("Mit freundlichen Grüßen", "Freundliche Grüße", "Mit besten Grüßen"))


def ref(rng: random.Random, prefix: str, digits: int) -> str:
    return f"{prefix}{rng.randint(10 ** (digits - 1), 10**digits - 1)}"


# --- What each correspondent writes ------------------------------------------------------------


def payslip(rng: random.Random, day: date, h: Household) -> Draft:
    month = MONTHS[(day.month - 2) % 12]
    gross = rng.uniform(4300, 4600) * (1.03 ** (day.year - 2021))
    return Draft(
        letterhead=["Müller Maschinenbau GmbH", "Personalabteilung · Industriestraße 12 · 85748 Garching"],
        heading=rng.choice(["Entgeltabrechnung", "Abrechnung der Brutto/Netto-Bezüge", "Verdienstabrechnung"])
        + f" {month} {day.year if day.month > 1 else day.year - 1}",
        facts=[
            ("Personalnummer", str(h.employer_id)),
            ("Steuerklasse", rng.choice(["III", "IV"])),
            ("Kostenstelle", ref(rng, "KST-", 3)),
        ],
        body=[
            f"Tarifentgelt {money(rng, gross * 0.9, gross * 0.9)}",
            f"Leistungszulage {money(rng, 150, 400)}",
            f"Gesamtbrutto {money(rng, gross, gross)}",
            f"Lohnsteuer {money(rng, 500, 700)}  Solidaritätszuschlag 0,00 €",
            f"Kirchensteuer {money(rng, 30, 60)}",
            f"KV-Beitrag {money(rng, 330, 380)}  RV-Beitrag {money(rng, 380, 430)}",
            f"AV-Beitrag {money(rng, 50, 70)}  PV-Beitrag {money(rng, 70, 110)}",
            f"Auszahlungsbetrag {money(rng, gross * 0.6, gross * 0.65)}",
            "Überweisung auf Konto DE12 7015 0000 0012 3456 78",
        ],
        footer=["Müller Maschinenbau GmbH · Sitz Garching · HRB 123456 Amtsgericht München"],
        salutation=False,
    )


def wage_tax_certificate(rng: random.Random, day: date, h: Household) -> Draft:
    return Draft(
        letterhead=["Müller Maschinenbau GmbH", "Industriestraße 12", "85748 Garching"],
        heading=f"Ausdruck der elektronischen Lohnsteuerbescheinigung für {day.year - 1}",
        facts=[
            ("eTIN", f"{h.surname.upper()[:6]}{rng.randint(10, 99)}A{rng.randint(10, 99)}"),
            ("Personalnummer", str(h.employer_id)),
            ("Dauer des Dienstverhältnisses", f"01.01.{day.year - 1} - 31.12.{day.year - 1}"),
        ],
        body=[
            f"3. Bruttoarbeitslohn {money(rng, 52000, 60000)}",
            f"4. Einbehaltene Lohnsteuer {money(rng, 6500, 8500)}",
            f"6. Einbehaltene Kirchensteuer {money(rng, 400, 700)}",
            f"22. Arbeitgeberanteil zur Rentenversicherung {money(rng, 4800, 5400)}",
            "Diese Bescheinigung wurde an das Finanzamt übermittelt.",
        ],
        footer=["Müller Maschinenbau GmbH · Geschäftsführer: Dr. Ralf Müller"],
        salutation=False,
    )


def employer_letter(rng: random.Random, day: date, h: Household) -> Draft:
    topic = rng.choice(
        [
            (
                "Anpassung Ihres Entgelts",
                "aufgrund des neuen Tarifabschlusses erhöht sich Ihr monatliches Entgelt "
                f"ab dem 01.{day.month:02d}.{day.year} um {rng.randint(2, 6)} %.",
            ),
            (
                "Jahressonderzahlung",
                f"wir freuen uns, Ihnen für das Geschäftsjahr {day.year} eine Sonderzahlung "
                f"in Höhe von {money(rng, 1500, 4000)} mitzuteilen.",
            ),
            ("Bestätigung Ihrer Elternzeit", "hiermit bestätigen wir Ihre Elternzeit wie beantragt."),
        ]
    )
    return Draft(
        letterhead=["Müller Maschinenbau GmbH · Industriestraße 12 · 85748 Garching"],
        heading=topic[0],
        facts=[("Personalnummer", str(h.employer_id)), ("Datum", de_date(day))],
        body=[
            f"Sehr geehrte Frau {h.surname},",
            topic[1],
            "Bei Fragen wenden Sie sich an die Personalabteilung.",
            greeting(rng),
            "i. A. Claudia Huber, Personalabteilung",
        ],
        footer=["Müller Maschinenbau GmbH · Sitz Garching · HRB 123456"],
        salutation=False,
    )


def bank_statement(rng: random.Random, day: date, h: Household) -> Draft:
    number = (day.month + 11) % 12 + 1
    lines = []
    balance = rng.uniform(1500, 9000)
    lines.append(f"Alter Kontostand vom {de_date(day - timedelta(days=30))} {money(rng, balance, balance)}")
    payees = [
        "Müller Maschinenbau GmbH Gehalt",
        "Telekom Deutschland GmbH",
        "Stadtwerke München",
        "Hausverwaltung Becker Miete",
        "REWE Markt",
        "Amazon Payments Europe",
        "Vodafone GmbH",
        "Allianz Versicherungs-AG",
        "Bargeldauszahlung Geldautomat",
        "PayPal Europe",
        "dm-drogerie markt",
    ]
    for _ in range(rng.randint(6, 14)):
        when = day - timedelta(days=rng.randint(1, 29))
        lines.append(f"{when:%d.%m.} {rng.choice(payees)} {rng.choice(['', '-'])}{money(rng, 5, 1200)}")
    lines.append(f"Neuer Kontostand vom {de_date(day)} {money(rng, 1500, 9000)}")
    return Draft(
        letterhead=[
            rng.choice(
                ["Stadtsparkasse München", "Stadtsparkasse München · Ungererstraße 67 · 80805 München"]
            )
        ],
        heading=f"Kontoauszug {number}/{day.year}",
        facts=[("IBAN", "DE12 7015 0000 0012 3456 78"), ("BIC", "SSKMDEMMXXX"), ("Blatt", "1 von 1")],
        body=lines,
        footer=["Stadtsparkasse München · Anstalt des öffentlichen Rechts · Bitte prüfen Sie die Buchungen."],
        salutation=False,
        recipient_both=True,
    )


def tax_assessment(rng: random.Random, day: date, h: Household) -> Draft:
    year = day.year - 1
    outcome = rng.choice([("Erstattung", money(rng, 200, 2400)), ("Nachzahlung", money(rng, 100, 900))])
    return Draft(
        letterhead=["Finanzamt München", "Abteilung Veranlagung", "Deroystraße 18, 80335 München"],
        heading=rng.choice([f"Bescheid für {year} über Einkommensteuer", f"Einkommensteuerbescheid {year}"])
        + rng.choice(["", " und Solidaritätszuschlag"]),
        facts=[
            ("Steuernummer", f"14{rng.randint(1, 9)}/{rng.randint(100, 999)}/{rng.randint(10000, 99999)}"),
            ("Datum", de_date(day)),
        ],
        body=[
            "Der Bescheid ist nach § 165 Abs. 1 AO teilweise vorläufig.",
            f"Festgesetzt werden Einkommensteuer {money(rng, 8000, 15000)}",
            f"Abzüglich Steuerabzug vom Lohn {money(rng, 8000, 15000)}",
            f"{outcome[0]}: {outcome[1]}",
            "Rechtsbehelfsbelehrung: Der Bescheid kann mit dem Einspruch angefochten werden.",
            "Der Einspruch ist innerhalb eines Monats nach Bekanntgabe einzulegen.",
        ],
        footer=["Bankverbindung: Bundesbank Filiale München · IBAN DE26 7000 0000 0070 0015 11"],
        salutation=False,
        recipient_both=True,
    )


def tax_request(rng: random.Random, day: date, h: Household) -> Draft:
    return Draft(
        letterhead=["Finanzamt München", "Deroystraße 18, 80335 München"],
        heading=rng.choice(["Anforderung von Unterlagen", "Rückfrage zu Ihrer Steuererklärung"]),
        facts=[
            ("Steuernummer", f"14{rng.randint(1, 9)}/{rng.randint(100, 999)}/{rng.randint(10000, 99999)}"),
            ("Datum", de_date(day)),
        ],
        body=[
            f"Sehr geehrte Frau {h.surname}, sehr geehrter Herr {h.surname},",
            f"zur Bearbeitung Ihrer Einkommensteuererklärung {day.year - 1} benötige ich noch "
            "folgende Belege:",
            rng.choice(
                [
                    "Nachweise über Handwerkerleistungen",
                    "Belege zu den Krankheitskosten",
                    "Spendenbescheinigungen",
                ]
            ),
            f"Bitte reichen Sie diese bis zum {de_date(day + timedelta(days=28))} ein.",
            greeting(rng),
            "Ihr Finanzamt",
        ],
        footer=["Sprechzeiten: Mo-Fr 8-12 Uhr"],
        salutation=False,
        recipient_both=True,
    )


def telekom_invoice(rng: random.Random, day: date, h: Household) -> Draft:
    customer = 40000000 + h.employer_id
    if day >= date(2024, 10, 1):  # the redesign: another layout, other words
        return Draft(
            letterhead=["T", "Telekom", "Deutschland GmbH"],
            heading="Ihre Rechnung " + f"{MONTHS[day.month - 1]} {day.year}",
            facts=[
                ("Kundennummer", str(customer)),
                ("Rechnungsnummer", ref(rng, "", 12)),
                ("Buchungskonto", ref(rng, "", 10)),
            ],
            body=[
                f"Hallo {h.first} {h.surname},",
                "hier ist Ihre aktuelle Rechnung. Alles auf einen Blick:",
                f"MagentaZuhause L {money(rng, 44.95, 44.95)}",
                f"Summe {money(rng, 44, 60)}",
                "Wir buchen den Betrag in den nächsten Tagen von Ihrem Konto ab.",
                "Fragen? telekom.de/hilfe oder die MeinMagenta App",
            ],
            footer=["Telekom Deutschland GmbH, Landgrabenweg 151, 53227 Bonn, Amtsgericht Bonn HRB 5919"],
            salutation=False,
        )
    return Draft(
        letterhead=["Telekom Deutschland GmbH · Landgrabenweg 151 · 53227 Bonn"],
        heading="Rechnung",
        facts=[
            ("Kundennummer", str(customer)),
            ("Rechnungsnummer", ref(rng, "", 12)),
            ("Rechnungsdatum", de_date(day)),
        ],
        body=[
            rng.choice(["Ihre Rechnung für", "Rechnung für den Monat"])
            + f" {MONTHS[day.month - 1]} {day.year}",
            f"Monatliche Beträge MagentaZuhause M {money(rng, 39.95, 39.95)}",
            f"Verbindungen {money(rng, 0, 8)}",
            f"Summe netto {money(rng, 33, 40)}  Umsatzsteuer 19 % {money(rng, 6, 8)}",
            f"Rechnungsbetrag {money(rng, 39, 48)}",
            "Der Rechnungsbetrag wird am "
            + de_date(day + timedelta(days=10))
            + " von Ihrem Konto abgebucht.",
        ],
        footer=["Telekom Deutschland GmbH · Amtsgericht Bonn HRB 5919 · USt-IdNr. DE 814645262"],
    )


def vodafone_invoice(rng: random.Random, day: date, h: Household) -> Draft:
    return Draft(
        letterhead=[rng.choice(["Vodafone GmbH", "vodafone"]), "Ferdinand-Braun-Platz 1, 40549 Düsseldorf"],
        heading=rng.choice(["Ihre Mobilfunk-Rechnung", "Rechnung Mobilfunk"]),
        facts=[
            ("Kundenkonto", ref(rng, "", 9)),
            ("Rufnummer", f"0172 {rng.randint(1000000, 9999999)}"),
            ("Rechnungsdatum", de_date(day)),
        ],
        body=[
            f"Tarif Red M {money(rng, 29.99, 34.99)}",
            f"Roaming EU {money(rng, 0, 5)}",
            f"Gesamtbetrag inkl. MwSt. {money(rng, 30, 42)}",
            "Zahlung per Lastschrift.",
        ],
        footer=["Vodafone GmbH · Amtsgericht Düsseldorf HRB 38062"],
    )


def utility_bill(rng: random.Random, day: date, h: Household) -> Draft:
    kwh = rng.randint(2400, 3600)
    return Draft(
        letterhead=["SWM Versorgungs GmbH", "Emmy-Noether-Straße 2 · 80992 München"],
        heading=rng.choice(
            ["Jahresabrechnung Strom", "Ihre Jahresrechnung für Strom und Erdgas", "Jahresabrechnung"]
        )
        + f" {day.year - 1}",
        facts=[
            ("Vertragskonto", ref(rng, "", 10)),
            ("Zählernummer", ref(rng, "1ESY", 8)),
            ("Abrechnungszeitraum", f"01.01.{day.year - 1} - 31.12.{day.year - 1}"),
        ],
        body=[
            f"Verbrauch Strom {kwh} kWh, Arbeitspreis {rng.uniform(28, 42):.2f} ct/kWh",
            f"Grundpreis {money(rng, 110, 160)}",
            f"Gesamtbetrag {money(rng, 900, 1400)}",
            f"Geleistete Abschläge {money(rng, 900, 1400)}",
            f"{rng.choice(['Guthaben', 'Nachzahlung'])} {money(rng, 10, 240)}",
            f"Ihr neuer monatlicher Abschlag ab {MONTHS[(day.month) % 12]}: {money(rng, 70, 120)}",
        ],
        footer=["SWM Versorgungs GmbH · Ein Unternehmen der Stadtwerke München · HRB 121920"],
    )


def utility_letter(rng: random.Random, day: date, h: Household) -> Draft:
    return Draft(
        letterhead=["Stadtwerke München", "Kundenservice · 80287 München"],
        heading=rng.choice(
            ["Preisanpassung zum 1. " + MONTHS[(day.month + 1) % 12], "Information zu Ihrem Abschlag"]
        ),
        facts=[("Vertragskonto", ref(rng, "", 10)), ("Datum", de_date(day))],
        body=[
            f"Sehr geehrte Frau {h.surname},",
            rng.choice(
                [
                    "die Beschaffungskosten für Energie haben sich verändert.",
                    "auf Ihren Wunsch haben wir Ihren Abschlag angepasst.",
                ]
            ),
            f"Ihr Abschlag beträgt künftig {money(rng, 60, 130)} monatlich.",
            greeting(rng),
            "Ihre SWM",
        ],
        footer=["SWM Versorgungs GmbH · HRB 121920"],
        salutation=False,
    )


def service_charges(rng: random.Random, day: date, h: Household) -> Draft:
    return Draft(
        letterhead=["Hausverwaltung Becker & Partner", "Kaulbachstraße 40 · 80539 München"],
        heading=f"Betriebskostenabrechnung {day.year - 1}",
        facts=[
            ("Objekt", h.street),
            ("Mieter", f"{h.first} und {h.partner} {h.surname}"),
            ("Abrechnungszeitraum", f"01.01.{day.year - 1} - 31.12.{day.year - 1}"),
        ],
        body=[
            f"Grundsteuer {money(rng, 150, 260)}",
            f"Wasser/Abwasser {money(rng, 300, 500)}",
            f"Hauswart und Gartenpflege {money(rng, 180, 320)}",
            f"Müllabfuhr {money(rng, 120, 220)}",
            f"Heizkosten lt. Abrechnung {money(rng, 700, 1300)}",
            f"Vorauszahlungen {money(rng, 1800, 2400)}",
            f"{rng.choice(['Guthaben', 'Nachzahlung'])} {money(rng, 20, 400)}",
            "Haushaltsnahe Dienstleistungen nach § 35a EStG sind gesondert ausgewiesen.",
        ],
        footer=["Hausverwaltung Becker & Partner · Tel. 089 123456"],
        recipient_both=True,
    )


def landlord_letter(rng: random.Random, day: date, h: Household) -> Draft:
    return Draft(
        letterhead=["Hausverwaltung Becker & Partner · Kaulbachstraße 40 · 80539 München"],
        heading=rng.choice(
            ["Ankündigung Wartungsarbeiten", "Mieterhöhung gemäß § 558 BGB", "Rauchwarnmelderprüfung"]
        ),
        facts=[("Objekt", h.street), ("Datum", de_date(day))],
        body=[
            f"Sehr geehrte Familie {h.surname},",
            rng.choice(
                [
                    "am kommenden Dienstag werden die Heizungsanlagen gewartet.",
                    f"die Nettokaltmiete erhöht sich ab {MONTHS[(day.month + 2) % 12]} "
                    f"um {money(rng, 40, 90)}.",
                    "der Techniker benötigt Zugang zu allen Räumen Ihrer Wohnung.",
                ]
            ),
            "Wir bitten um Ihr Verständnis.",
            greeting(rng),
            "Hausverwaltung Becker",
        ],
        footer=["Hausverwaltung Becker & Partner"],
        salutation=False,
        recipient_both=True,
    )


def car_policy(insurer: str, address: str, footer: str) -> Writer:
    def write(rng: random.Random, day: date, h: Household) -> Draft:
        plate = f"M-{rng.choice(['JB', 'TB', 'KA'])} {rng.randint(100, 9999)}"
        return Draft(
            letterhead=[insurer, address],
            heading=rng.choice(
                ["Versicherungsschein", "Nachtrag zum Versicherungsschein", "Beitragsrechnung"]
            )
            + " Kfz-Versicherung",
            facts=[
                ("Versicherungsnummer", ref(rng, "AS-", 9)),
                ("Kennzeichen", plate),
                ("Hauptfälligkeit", f"01.01.{day.year + 1}"),
            ],
            body=[
                f"Fahrzeug: {rng.choice(['VW Golf Variant', 'Skoda Octavia Combi'])}, Erstzulassung 2019",
                f"Kfz-Haftpflicht SF-Klasse {rng.randint(8, 20)} {money(rng, 250, 420)}",
                f"Vollkasko Selbstbeteiligung 300 € {money(rng, 300, 520)}",
                f"Jahresbeitrag inkl. Versicherungsteuer {money(rng, 600, 950)}",
                "Der Beitrag wird zur Fälligkeit abgebucht.",
            ],
            footer=[footer],
        )

    return write


def home_insurance(rng: random.Random, day: date, h: Household) -> Draft:
    return Draft(
        letterhead=["HUK-COBURG", "Versicherungsgruppe · 96444 Coburg"],
        heading=rng.choice(
            ["Beitragsrechnung Hausratversicherung", "Ihre Hausrat- und Haftpflichtversicherung"]
        ),
        facts=[("Versicherungsschein-Nr.", ref(rng, "", 10)), ("Datum", de_date(day))],
        body=[
            f"Versicherungssumme Hausrat {money(rng, 60000, 90000)}",
            f"Privathaftpflicht Deckungssumme 10.000.000 € Beitrag {money(rng, 60, 90)}",
            f"Beitrag Hausrat {money(rng, 90, 160)}",
            f"Gesamtbeitrag {money(rng, 150, 250)}",
        ],
        footer=["HUK-COBURG Haftpflicht-Unterstützungs-Kasse kraftfahrender Beamter Deutschlands a. G."],
    )


def health_insurer(rng: random.Random, day: date, h: Household) -> Draft:
    topic = rng.choice(
        [
            (
                "Bescheinigung über gezahlte Beiträge",
                f"für das Jahr {day.year - 1} haben Sie Beiträge zur Kranken- "
                f"und Pflegeversicherung in Höhe von {money(rng, 4000, 6000)} gezahlt.",
            ),
            ("Ihre neue Gesundheitskarte", "anbei erhalten Sie Ihre neue elektronische Gesundheitskarte."),
            ("Bonusprogramm", f"für Ihre Teilnahme am Bonusprogramm erhalten Sie {money(rng, 30, 150)}."),
        ]
    )
    return Draft(
        letterhead=["Techniker Krankenkasse", "Bramfelder Straße 140 · 22305 Hamburg"],
        heading=topic[0],
        facts=[
            ("Versichertennummer", f"{h.surname[0]}{rng.randint(100000000, 999999999)}"),
            ("Datum", de_date(day)),
        ],
        body=[f"Sehr geehrte Frau {h.surname},", topic[1], greeting(rng), "Ihre Techniker Krankenkasse"],
        footer=["Techniker Krankenkasse · Körperschaft des öffentlichen Rechts"],
        salutation=False,
    )


def doctor_invoice(rng: random.Random, day: date, h: Household) -> Draft:
    items = [
        ("1", "Beratung", 10.72),
        ("5", "Symptombezogene Untersuchung", 10.49),
        ("250", "Blutentnahme", 4.20),
        ("3", "Eingehende Beratung", 20.11),
        ("7", "Vollständige körperliche Untersuchung", 16.32),
    ]
    chosen = rng.sample(items, rng.randint(2, 4))
    return Draft(
        letterhead=[
            "Praxis Dr. med. Anna Weber",
            "Fachärztin für Allgemeinmedizin",
            "Sendlinger Straße 7 · 80331 München",
        ],
        heading="Privatliquidation" if rng.random() < 0.5 else "Rechnung nach GOÄ",
        facts=[
            ("Rechnungsnummer", ref(rng, "", 6)),
            ("Behandlungszeitraum", de_date(day - timedelta(days=14))),
        ],
        body=[f"Patientin: {h.first} {h.surname}"]
        + [
            f"GOÄ {number} {text} Faktor 2,3 {money(rng, price * 2.3, price * 2.3)}"
            for number, text, price in chosen
        ]
        + [f"Gesamtbetrag {money(rng, 40, 160)}", "Zahlbar innerhalb von 30 Tagen ohne Abzug."],
        footer=["Deutsche Apotheker- und Ärztebank · IBAN DE44 3006 0601 0001 2345 67"],
    )


def dentist(rng: random.Random, day: date, h: Household, *, plan: bool = False) -> Draft:
    return Draft(
        letterhead=["Zahnarztpraxis Dr. Emre Kaya", "Leopoldstraße 88 · 80802 München"],
        heading=rng.choice(["Heil- und Kostenplan", "Kostenvoranschlag Prophylaxe"])
        if plan
        else rng.choice(["Rechnung", "Rechnung Zahnärztliche Behandlung", "Liquidation"]),
        facts=[("Patient", f"{h.first} {h.surname}"), ("Datum", de_date(day))],
        body=[
            f"Professionelle Zahnreinigung {money(rng, 90, 140)}",
            f"Füllung Kompositmaterial {money(rng, 80, 200)}",
            f"Eigenanteil {money(rng, 50, 400)}",
            "Bitte überweisen Sie den Betrag innerhalb von 14 Tagen.",
        ],
        footer=["Zahnarztpraxis Dr. Kaya · Tel. 089 3456789"],
    )


def pharmacy(rng: random.Random, day: date, h: Household) -> Draft:
    return Draft(
        letterhead=["Apotheke am Markt", "Inh. M. Schreiber e.K. · Marktplatz 3 · 81541 München"],
        heading="Quittung",
        facts=[
            ("Bon-Nr.", ref(rng, "", 5)),
            ("Datum", f"{de_date(day)} {rng.randint(8, 18)}:{rng.randint(10, 59)}"),
        ],
        body=[
            rng.choice(["Ibuprofen 400 20 St.", "Nasenspray 10 ml", "Vitamin D3 1000 IE"])
            + f" {money(rng, 3, 15)}",
            f"Zuzahlung Rezept {money(rng, 5, 10)}",
            f"Summe {money(rng, 5, 30)}",
            rng.choice(["Kartenzahlung girocard", "Bar"]),
            "Gute Besserung! Vielen Dank für Ihren Einkauf.",
        ],
        footer=["USt-IdNr. DE 123456789"],
        salutation=False,
    )


def adac(rng: random.Random, day: date, h: Household) -> Draft:
    return Draft(
        letterhead=["ADAC e.V.", "Hansastraße 19 · 80686 München"],
        heading=rng.choice(["Beitragsrechnung Mitgliedschaft", "Ihre ADAC Plus-Mitgliedschaft"]),
        facts=[("Mitgliedsnummer", ref(rng, "", 9)), ("Datum", de_date(day))],
        body=[
            f"Mitgliedsbeitrag ADAC Plus {money(rng, 94, 139)} für {day.year + 1}",
            "Inklusive Pannenhilfe in ganz Europa und Rücktransport.",
            "Der Beitrag wird abgebucht.",
        ],
        footer=["ADAC e.V. · Vereinsregister München VR 2024"],
    )


def dentist_plan(rng: random.Random, day: date, h: Household) -> Draft:
    return dentist(rng, day, h, plan=True)


def garage_offer(rng: random.Random, day: date, h: Household) -> Draft:
    return garage(rng, day, h, offer=True)


def garage(rng: random.Random, day: date, h: Household, *, offer: bool = False) -> Draft:
    return Draft(
        letterhead=["Autohaus Schmidt GmbH", "Meisterbetrieb · Tegernseer Landstraße 210 · 81549 München"],
        heading="Kostenvoranschlag" if offer else rng.choice(["Werkstattrechnung", "Rechnung Inspektion"]),
        facts=[
            ("Auftrag", ref(rng, "W", 6)),
            ("Kennzeichen", f"M-JB {rng.randint(100, 9999)}"),
            ("km-Stand", str(rng.randint(40000, 120000))),
        ],
        body=[
            f"Inspektion nach Herstellervorgabe {money(rng, 180, 320)}",
            f"Bremsbeläge vorne {money(rng, 120, 260)}",
            f"Motoröl 5W-30 4,5 l {money(rng, 50, 80)}",
            f"Summe netto {money(rng, 300, 700)}",
            f"MwSt 19 % {money(rng, 60, 130)}",
            f"Gesamtbetrag {money(rng, 360, 830)}",
        ]
        + (["Gültig bis " + de_date(day + timedelta(days=30))] if offer else []),
        footer=["Autohaus Schmidt GmbH · HRB 98765 · Geschäftsführer Klaus Schmidt"],
    )


def amazon(rng: random.Random, day: date, h: Household) -> Draft:
    item = rng.choice(
        [
            "USB-C Ladekabel",
            "Kaffeebohnen 1kg",
            "Bluetooth Kopfhörer",
            "Buch: Der Process",
            "Druckerpatronen XL",
            "Schreibtischlampe LED",
        ]
    )
    english = rng.random() < 0.3
    return Draft(
        letterhead=["amazon.de", "Amazon EU S.à r.l., 38 avenue John F. Kennedy, L-1855 Luxembourg"],
        heading=("Invoice" if english else "Rechnung") + rng.choice(["", " / Invoice"]),
        facts=[
            (
                "Bestellnummer" if not english else "Order number",
                f"{rng.randint(300, 306)}-{rng.randint(1000000, 9999999)}-{rng.randint(1000000, 9999999)}",
            ),
            ("Rechnungsdatum" if not english else "Invoice date", de_date(day)),
        ],
        body=[
            f"{item} 1 {money(rng, 8, 120)}",
            ("Versandkosten" if not english else "Shipping") + " 0,00 €",
            ("Gesamtbetrag" if not english else "Total") + f" {money(rng, 8, 120)}",
            "USt. 19 %" if not english else "VAT 19 %",
        ],
        footer=["Amazon EU S.à r.l. · RCS Luxembourg B 101818 · USt-ID DE814584193"],
        salutation=False,
    )


def pension_info(rng: random.Random, day: date, h: Household) -> Draft:
    return Draft(
        letterhead=["Deutsche Rentenversicherung", "Bund · 10704 Berlin"],
        heading="Renteninformation",
        facts=[
            (
                "Versicherungsnummer",
                f"65 {rng.randint(100000, 999999)} {h.surname[0]} {rng.randint(100, 999)}",
            )
        ],
        body=[
            f"Sehr geehrte Frau {h.surname},",
            "diese Renteninformation gibt Ihnen einen Überblick.",
            f"Ihre bislang erreichte Rentenanwartschaft: {money(rng, 700, 1200)} monatlich",
            f"Künftige Rentenanpassungen von 1 % jährlich ergäben {money(rng, 1800, 2400)}",
            greeting(rng),
        ],
        footer=["Deutsche Rentenversicherung Bund"],
        salutation=False,
    )


def donation(rng: random.Random, day: date, h: Household) -> Draft:
    return Draft(
        letterhead=["SOS-Kinderdorf e.V.", "Renatastraße 77 · 80639 München"],
        heading="Zuwendungsbestätigung",
        facts=[
            ("Spendernummer", ref(rng, "", 8)),
            ("Zeitraum", f"01.01.{day.year - 1} - 31.12.{day.year - 1}"),
        ],
        body=[
            "Sammelbestätigung über Geldzuwendungen an steuerbegünstigte Einrichtungen",
            f"Summe der Zuwendungen {money(rng, 60, 600)}",
            "Wir sind wegen Förderung der Jugendhilfe nach dem Freistellungsbescheid des Finanzamts "
            "München von der Körperschaftsteuer befreit.",
            "Herzlichen Dank für Ihre Unterstützung!",
        ],
        footer=["SOS-Kinderdorf e.V. · Spendenkonto IBAN DE22 4306 0967 2222 2000 00"],
        salutation=False,
    )


def reminder(rng: random.Random, day: date, h: Household) -> Draft:
    return Draft(
        letterhead=["Telekom Deutschland GmbH · Landgrabenweg 151 · 53227 Bonn"],
        heading=rng.choice(["Zahlungserinnerung", "Mahnung"]),
        facts=[("Kundennummer", str(40000000 + h.employer_id)), ("Datum", de_date(day))],
        body=[
            f"Sehr geehrte Frau {h.surname},",
            "leider konnten wir keinen Zahlungseingang feststellen.",
            f"Offener Betrag {money(rng, 40, 60)}, Mahngebühr {money(rng, 2, 5)}",
            greeting(rng),
        ],
        footer=["Telekom Deutschland GmbH · Amtsgericht Bonn HRB 5919"],
        salutation=False,
    )


ALLIANZ = car_policy(
    "Allianz Versicherungs-AG",
    "Königinstraße 28 · 80802 München",
    "Allianz Versicherungs-AG · Vorsitzender des Vorstands · Sitz München · HRB 75727",
)
GENERALI = car_policy(
    "Generali Deutschland Versicherung AG",
    "Adenauerring 7 · 81737 München",
    "Generali Deutschland Versicherung AG · Sitz München · HRB 228339",
)
SWITCH = date(2025, 1, 1)  # the car insurance moves from Allianz to Generali
NEW_DENTIST = date(2024, 9, 1)

KINDS = (
    Kind("Müller Maschinenbau", "Payslip", ("work",), payslip, 12, day=28),
    Kind("Müller Maschinenbau", "Tax document", ("work",), wage_tax_certificate, 1, months=(2,), tax=-1),
    Kind("Müller Maschinenbau", "Letter", ("work",), employer_letter, 1.5),
    Kind("Stadtsparkasse München", "Bank statement", (), bank_statement, 12, day=2),
    Kind("Finanzamt München", "Tax document", (), tax_assessment, 1, months=(9, 10), tax=-1),
    Kind("Finanzamt München", "Letter", (), tax_request, 0.7, tax=-1),
    Kind("Telekom", "Invoice", ("utilities",), telekom_invoice, 12, day=6),
    Kind("Telekom", "Reminder", ("utilities",), reminder, 0.6),
    Kind("Vodafone", "Invoice", ("utilities",), vodafone_invoice, 12, day=15),
    Kind("Stadtwerke München", "Invoice", ("house", "utilities"), utility_bill, 1, months=(3,), tax=-1),
    Kind("Stadtwerke München", "Letter", ("house", "utilities"), utility_letter, 1.2),
    Kind("Hausverwaltung Becker", "Invoice", ("house",), service_charges, 1, months=(6, 7), tax=-1),
    Kind("Hausverwaltung Becker", "Letter", ("house",), landlord_letter, 1.5),
    Kind("Allianz", "Insurance", ("car", "insurance"), ALLIANZ, 2, until=SWITCH),
    Kind("Generali", "Insurance", ("car", "insurance"), GENERALI, 2, since=SWITCH),
    Kind("HUK-COBURG", "Insurance", ("house", "insurance"), home_insurance, 1.2),
    Kind("Techniker Krankenkasse", "Letter", ("health", "insurance"), health_insurer, 2.5),
    Kind("Dr. Weber", "Invoice", ("health",), doctor_invoice, 3, tax=0),
    Kind("Zahnarztpraxis Dr. Kaya", "Invoice", ("health",), dentist, 2, tax=0, since=NEW_DENTIST),
    Kind("Zahnarztpraxis Dr. Kaya", "Offer", ("health",), dentist_plan, 1, since=NEW_DENTIST),
    Kind("Apotheke am Markt", "Receipt", ("health",), pharmacy, 4),
    Kind("ADAC", "Invoice", ("car",), adac, 1, months=(11,)),
    Kind("Autohaus Schmidt", "Invoice", ("car",), garage, 2),
    Kind("Autohaus Schmidt", "Offer", ("car",), garage_offer, 0.7),
    Kind("Amazon", "Invoice", (), amazon, 8),
    Kind("Deutsche Rentenversicherung", "Letter", (), pension_info, 1, months=(5, 6)),
    Kind("SOS-Kinderdorf", "Certificate", (), donation, 1, months=(1, 2), tax=-1),
)


@dataclass(frozen=True)
class Labelled:
    day: date
    text: str
    document_type: str
    correspondent: str
    tags: tuple[str, ...]
    scanned: bool


def layout(rng: random.Random, draft: Draft, day: date, h: Household) -> str:
    """The page as OCR reads it: letterhead, address window, facts, heading, body, footer."""
    lines = list(draft.letterhead)
    lines.append("")
    lines.extend(h.recipient(rng, both=draft.recipient_both))
    lines.append("")
    facts = list(draft.facts)
    if not any(label == "Datum" for label, _ in facts) and rng.random() < 0.7:
        facts.append(("Datum", de_date(day)))
    if rng.random() < 0.5:
        lines.append(f"München, {de_date(day)}" if rng.random() < 0.3 else "")
    lines.extend(f"{label}: {value}" for label, value in facts)
    lines.append("")
    lines.append(draft.heading)
    lines.append("")
    if draft.salutation:
        lines.append(rng.choice([f"Sehr geehrte Frau {h.surname},", f"Guten Tag {h.first} {h.surname},"]))
    lines.extend(draft.body)
    lines.append("")
    lines.extend(draft.footer)
    return "\n".join(lines)


_OCR_SWAPS = (
    ("rn", "m"),
    ("m", "rn"),
    ("l", "1"),
    ("i", "l"),
    ("O", "0"),
    ("e", "c"),
    ("ü", "u"),
    ("ä", "a"),
    ("ö", "o"),
    ("ß", "B"),
    ("h", "b"),
    ("S", "5"),
    ("cl", "d"),
    ("t", "f"),
)


def scan(rng: random.Random, text: str) -> str:
    """OCR's misreadings at a rate of a few per hundred characters, some split words and lost lines."""
    rate = rng.uniform(0.01, 0.04)
    out = []
    i = 0
    while i < len(text):
        if rng.random() < rate:
            swap = rng.choice(_OCR_SWAPS)
            if text.startswith(swap[0], i):
                out.append(swap[1])
                i += len(swap[0])
                continue
            action = rng.random()
            if action < 0.3:
                i += 1  # a lost character
                continue
            if action < 0.6 and text[i] != "\n":
                out.append(text[i] + " ")  # a split word
                i += 1
                continue
        out.append(text[i])
        i += 1
    lines = "".join(out).split("\n")
    return "\n".join(line for line in lines if rng.random() > 0.03)


def schedule(rng: random.Random, kind: Kind) -> list[date]:
    days: list[date] = []
    for year in range(FIRST_DAY.year, LAST_DAY.year + 1):
        for month in range(1, 13):
            if kind.per_year == 12:
                chosen = [min(28, max(1, kind.day + rng.randint(-2, 2)))]
            elif kind.months:
                chosen = [rng.randint(1, 28)] if month == kind.months[(year * 7) % len(kind.months)] else []
            else:
                chosen = [rng.randint(1, 28) for _ in range(8) if rng.random() < kind.per_year / 12 / 8]
            days.extend(date(year, month, day) for day in chosen)
    return [day for day in days if kind.since <= day <= kind.until]


def build_archive(seed: int) -> list[Labelled]:
    """One household's archive, oldest first."""
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    h = household(rng)
    documents = []
    for kind in KINDS:
        for day in schedule(rng, kind):
            text = layout(rng, kind.write(rng, day, h), day, h)
            scanned = rng.random() < SCANNED_SHARE
            tags = kind.tags + ((f"tax {day.year + kind.tax}",) if kind.tax is not None else ())
            documents.append(
                Labelled(
                    day,
                    scan(rng, text) if scanned else text,
                    kind.document_type,
                    kind.correspondent,
                    tags,
                    scanned,
                )
            )
    documents.sort(key=lambda document: (document.day, document.correspondent))
    return documents


# --- Scoring -----------------------------------------------------------------------------------

_LEGAL_FORMS = re.compile(r"\b(?:gmbh|ag|e v|ev|e k|se|kg|partner|s a r l|versicherungs|versorgungs)\b")


def normalised(name: str) -> str:
    folded = unicodedata.normalize("NFKD", name.casefold().replace("_", " "))
    folded = "".join(char for char in folded if not unicodedata.combining(char))
    folded = re.sub(r"[\W_]+", " ", folded)
    return re.sub(r"\s+", " ", _LEGAL_FORMS.sub(" ", folded)).strip()


def map_onto(found: str | None, names: Sequence[str]) -> str | None:
    """The owner's name that ``found`` means: equal once normalised, or one within the other as words."""
    if not found or not normalised(found):
        return None
    wanted = f" {normalised(found)} "
    for name in names:
        own = f" {normalised(name)} "
        if own == wanted or (own.strip() and (own in wanted or wanted in own)):
            return name
    return None


@dataclass
class FieldScore:
    right: int = 0
    total: int = 0
    covered: int = 0
    covered_right: int = 0

    def add(self, *, right: bool, covered: bool = True) -> None:
        self.total += 1
        self.right += right
        self.covered += covered
        self.covered_right += right and covered

    @property
    def accuracy(self) -> float:
        return self.right / self.total if self.total else 0.0

    @property
    def coverage(self) -> float:
        return self.covered / self.total if self.total else 0.0

    @property
    def precision(self) -> float:
        return self.covered_right / self.covered if self.covered else 0.0


@dataclass
class TagScore:
    true_positive: int = 0
    predicted: int = 0
    actual: int = 0
    exact: int = 0
    documents: int = 0

    def add(self, predicted: set[str], actual: set[str]) -> None:
        self.true_positive += len(predicted & actual)
        self.predicted += len(predicted)
        self.actual += len(actual)
        self.exact += predicted == actual
        self.documents += 1

    @property
    def precision(self) -> float:
        return self.true_positive / self.predicted if self.predicted else 0.0

    @property
    def recall(self) -> float:
        return self.true_positive / self.actual if self.actual else 0.0

    @property
    def f1(self) -> float:
        both = self.precision + self.recall
        return 2 * self.precision * self.recall / both if both else 0.0

    @property
    def exact_share(self) -> float:
        return self.exact / self.documents if self.documents else 0.0


@dataclass
class Scores:
    document_type: FieldScore
    correspondent: FieldScore
    tags: TagScore


def score_rules(test: list[Labelled], types: list[str], correspondents: list[str], tags: list[str]) -> Scores:
    from documents.metadata.rules import RulesExtractor

    extractor = RulesExtractor()
    scores = Scores(FieldScore(), FieldScore(), TagScore())
    for document in test:
        found = extractor.extract(text=document.text, original_filename="scan.pdf")
        scores.document_type.add(right=map_onto(found.document_type, types) == document.document_type)
        scores.correspondent.add(
            right=map_onto(found.correspondent, correspondents) == document.correspondent
        )
        mapped = {
            name
            for tag in found.tags
            if (name := map_onto(tag, tags)) and normalised(tag) == normalised(name)
        }
        scores.tags.add(mapped, set(document.tags))
    return scores


def score_matcher(suggestions: list[Suggestions], test: list[Labelled], threshold: float) -> Scores:
    scores = Scores(FieldScore(), FieldScore(), TagScore())
    for suggested, document in zip(suggestions, test, strict=True):
        for name, score in (("document_type", scores.document_type), ("correspondent", scores.correspondent)):
            suggestion = getattr(suggested, name)
            right = suggestion is not None and suggestion.label == getattr(document, name)
            score.add(right=right, covered=suggestion is not None and suggestion.probability >= threshold)
        scores.tags.add(
            {tag.label for tag in suggested.tags if tag.probability >= threshold}, set(document.tags)
        )
    return scores


def samples_of(documents: Sequence[Labelled]) -> list[TrainingSample]:
    from documents.matching import TrainingSample

    return [TrainingSample(d.text, d.document_type, d.correspondent, d.tags) for d in documents]


def train(documents: Sequence[Labelled]) -> TrainedMatcher:
    from documents.matching import matcher_train

    matcher = matcher_train(samples_of(documents), min_samples=1, min_tag_documents=2)
    assert matcher is not None, "every draw has two labels per field"
    return matcher


def percent(value: float) -> str:
    return f"{100 * value:5.1f} %"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--split", type=date.fromisoformat, default=date(2024, 7, 1))
    parser.add_argument("--large", type=int, default=5000, help="documents for the training-time run")
    parser.add_argument("--threshold", type=float, help="for the learning curve; the default's by default")
    args = parser.parse_args()

    import django

    django.setup()
    from documents.matching import MATCHING_CONFIDENCE_THRESHOLD, MATCHING_MIN_DOCUMENTS
    from documents.matching.storage import matcher_dumps
    from documents.metadata.rules import RulesExtractor

    threshold = MATCHING_CONFIDENCE_THRESHOLD if args.threshold is None else args.threshold
    archive = build_archive(args.seed)
    train_set = [d for d in archive if d.day < args.split]
    test_set = [d for d in archive if d.day >= args.split]
    types = sorted({d.document_type for d in archive})
    correspondents = sorted({d.correspondent for d in archive})
    tag_names = sorted({tag for d in archive for tag in d.tags})
    seen = {d.correspondent for d in train_set}
    unseen = [d for d in test_set if d.correspondent not in seen]
    print(
        f"archive: {len(archive)} documents ({sum(d.scanned for d in archive)} scanned), "
        f"{len(correspondents)} correspondents, {len(types)} types, {len(tag_names)} tags"
    )
    print(
        f"train: {len(train_set)} before {args.split}; test: {len(test_set)} from then on, "
        f"{len(unseen)} of them from correspondents the training never saw"
    )

    started = time.perf_counter()
    matcher = train(train_set)
    train_seconds = time.perf_counter() - started
    blob = matcher_dumps(matcher)

    started = time.perf_counter()
    suggestions = [matcher.suggest(d.text, tag_floor=0.0) for d in test_set]
    suggest_seconds = (time.perf_counter() - started) / len(test_set)
    extractor = RulesExtractor()
    started = time.perf_counter()
    for d in test_set:
        extractor.extract(text=d.text, original_filename="scan.pdf")
    rules_seconds = (time.perf_counter() - started) / len(test_set)

    rules = score_rules(test_set, types, correspondents, tag_names)
    learnt = score_matcher(suggestions, test_set, TAG_DECISION)
    print(f"\naccuracy on the held-out {len(test_set)} documents:")
    print(f"{'':34} {'type':>8} {'corresp.':>8}   tags: {'F1':>7} {'prec.':>7} {'recall':>7} {'exact':>7}")
    for name, scores in (("rules alone", rules), (f"classifier (tags >= {TAG_DECISION})", learnt)):
        print(
            f"{name:34} {percent(scores.document_type.accuracy)} {percent(scores.correspondent.accuracy)}   "
            f"      {percent(scores.tags.f1)} {percent(scores.tags.precision)} {percent(scores.tags.recall)} "
            f"{percent(scores.tags.exact_share)}"
        )
    print(
        f"\nthe classifier above a threshold: coverage / precision (default {MATCHING_CONFIDENCE_THRESHOLD})"
    )
    print(f"{'threshold':>10} {'type':>17} {'correspondent':>17}   {'tags precision / recall':>24}")
    for level in THRESHOLDS:
        at = score_matcher(suggestions, test_set, level)
        print(
            f"{level:>10.1f} {percent(at.document_type.coverage)} / "
            f"{percent(at.document_type.precision)} "
            f"{percent(at.correspondent.coverage)} / {percent(at.correspondent.precision)}   "
            f"{percent(at.tags.precision):>14} / {percent(at.tags.recall)}"
        )
    unseen_sure = sum(
        1
        for d, s in zip(test_set, suggestions, strict=True)
        if d.correspondent not in seen and s.correspondent and s.correspondent.probability >= threshold
    )
    print(
        f"unseen correspondents: {unseen_sure} of {len(unseen)} got a confident (hence wrong) correspondent"
    )
    per_tag = Counter[str]()
    per_tag_right = Counter[str]()
    for d, s in zip(test_set, suggestions, strict=True):
        chosen = {tag.label for tag in s.tags if tag.probability >= TAG_DECISION}
        for tag in d.tags:
            per_tag[tag] += 1
            per_tag_right[tag] += tag in chosen
    print("tag recall per tag: " + ", ".join(f"{t} {per_tag_right[t]}/{per_tag[t]}" for t in sorted(per_tag)))

    print(f"\ntraining on {len(train_set)}: {train_seconds:.2f} s; stored model {len(blob) / 1024:.0f} KiB")
    print(
        f"suggest: {1000 * suggest_seconds:.2f} ms per document; "
        f"rules extractor {1000 * rules_seconds:.2f} ms "
        f"(ratio suggest / rules {suggest_seconds / rules_seconds:.2f})"
    )

    if args.large:
        large: list[Labelled] = []
        household_seed = args.seed
        while len(large) < args.large:
            household_seed += 1
            large.extend(build_archive(household_seed))
        large = large[: args.large]
        started = time.perf_counter()
        big = train(large)
        print(
            f"training on {len(large)}: {time.perf_counter() - started:.2f} s; stored model "
            f"{len(matcher_dumps(big)) / 1024:.0f} KiB"
        )

    print(
        "\nlearning curve (random draws from the training part, mean of "
        f"{CURVE_DRAWS}; confident = from {threshold}):"
    )
    print(
        f"{'documents':>10} {'type':>8} {'corresp.':>8} {'tags F1':>8}   confident type cov./prec.   "
        "corresp. cov./prec.   tags prec./recall"
    )
    draw_rng = random.Random(args.seed)  # noqa: S311 - test data, not secrets
    for size in (*CURVE, len(train_set)):
        rows = []
        for _draw in range(CURVE_DRAWS if size < len(train_set) else 1):
            sample = draw_rng.sample(train_set, min(size, len(train_set)))
            curve_matcher = train(sample)
            found = curve_matcher.suggest_many([d.text for d in test_set], tag_floor=0.0)
            rows.append(
                (
                    score_matcher(found, test_set, TAG_DECISION),
                    score_matcher(found, test_set, threshold),
                )
            )

        def mean(
            pick: Callable[[tuple[Scores, Scores]], float], rows: list[tuple[Scores, Scores]] = rows
        ) -> str:
            return percent(statistics.fmean(pick(row) for row in rows))

        print(
            f"{size:>10} {mean(lambda r: r[0].document_type.accuracy)} "
            f"{mean(lambda r: r[0].correspondent.accuracy)} "
            f"{mean(lambda r: r[0].tags.f1)}   {mean(lambda r: r[1].document_type.coverage)} / "
            f"{mean(lambda r: r[1].document_type.precision)}     "
            f"{mean(lambda r: r[1].correspondent.coverage)} / "
            f"{mean(lambda r: r[1].correspondent.precision)}   {mean(lambda r: r[1].tags.precision)} / "
            f"{mean(lambda r: r[1].tags.recall)}"
        )
    print(
        f"\ndefaults: MATCHING_MIN_DOCUMENTS = {MATCHING_MIN_DOCUMENTS}, "
        f"MATCHING_CONFIDENCE_THRESHOLD = {MATCHING_CONFIDENCE_THRESHOLD}"
    )


if __name__ == "__main__":
    main()
