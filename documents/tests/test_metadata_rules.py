from __future__ import annotations

import random
import string
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

import documents.metadata.rules as rules
from documents.metadata.base import DOCUMENT_TYPES, MAX_TAGS, Amount, ExtractedMetadata, MetadataExtractor
from documents.metadata.rules import RulesExtractor
from documents.metadata.rules import dates as rules_dates
from documents.metadata.rules import language as rules_language

GERMAN_INVOICE = """Stadtwerke München GmbH · Emmy-Noether-Straße 2 · 80992 München
Herrn
Max Mustermann
Lindwurmstraße 88
80337 München

Rechnung
Rechnungsnummer: RE-4711
Kundennummer: 100234567
Rechnungsdatum: 12.03.2024
Leistungszeitraum: 01.02.2024 - 29.02.2024

Sehr geehrter Herr Mustermann,
für die Lieferung von Strom berechnen wir Ihnen:

Pos. Beschreibung            Menge   Preis
1    Arbeitspreis Strom      250 kWh  75,00 €
2    Grundpreis              1 Monat  12,50 €
Zwischensumme netto                   87,50 €
zzgl. 19 % MwSt.                      16,63 €
Gesamtbetrag                         104,13 €

Zahlbar bis 26.03.2024 auf das Konto
IBAN: DE89 3704 0044 0532 0130 00  BIC: COBADEFFXXX

Mit freundlichen Grüßen
Ihre Stadtwerke München
"""

ENGLISH_INVOICE = """ACME Widgets Ltd
42 Harbour Road
Bristol BS1 5TY
United Kingdom

INVOICE

Invoice No.: INV-2024-0815
Invoice date: March 12, 2024
Due date: April 11, 2024

Bill to:
Globex Corporation
1 Market Street
London EC2A 4BX

Description                     Qty     Amount
Widget, large                    10   £1,000.00
Shipping                          1      £45.50
Subtotal                              £1,045.50
VAT 20%                                 £209.10
Total due                             £1,254.60

Please pay to IBAN GB82 WEST 1234 5698 7654 32.
Thank you for your business.
"""

US_INVOICE = """Initech LLC
4120 Freidrich Lane
Austin, TX 78744

Invoice #: 10045
Date: 03/12/2024

Consulting services    $1,200.00
Travel                   $34.56
Amount due: $1,234.56
"""

GERMAN_LETTER = """Techniker Krankenkasse
Bramfelder Straße 140
22305 Hamburg

Frau
Erika Musterfrau
Gartenweg 3
50667 Köln

Hamburg, 5. Februar 2024

Betreff: Ihre Mitgliedschaft ab dem 1. April 2024

Sehr geehrte Frau Musterfrau,

wir freuen uns, Ihnen mitteilen zu können, dass Ihre Mitgliedschaft bei uns bestätigt ist.
Bitte bewahren Sie dieses Schreiben für Ihre Unterlagen auf.

Mit freundlichen Grüßen
Ihre Techniker Krankenkasse
"""

ENGLISH_LETTER = """Northwind Traders Inc.
500 Market Street
San Francisco, CA 94105

June 3, 2024

Ms. Jane Doe
77 Elm Avenue
Springfield, IL 62704

Subject: Change of our office hours

Dear Ms. Doe,

we would like to inform you that from July 1 our office will be open from 8 am to 4 pm.
Thank you for your understanding and we look forward to hearing from you.

Kind regards,
Northwind Traders Inc.
"""

CANCELLATION_LETTER = """Max Mustermann
Lindwurmstraße 88
80337 München

Telekom Deutschland GmbH
Landgrabenweg 151
53227 Bonn

München, 3. Januar 2024

Kündigung meines Vertrags, Kundennummer 556677

Sehr geehrte Damen und Herren,
hiermit kündige ich meinen Vertrag zum nächstmöglichen Termin.
Mit freundlichen Grüßen
Max Mustermann
"""

RECEIPT = """REWE Markt GmbH
Domstraße 20
50668 Köln

KASSENBON
BANANEN                1,99 EUR
VOLLMILCH 3,5%         1,19 EUR
BROT                   2,49 EUR
--------------------------------
SUMME EUR              5,67
Geg. Girocard          5,67
Datum: 14.03.2024  Uhrzeit: 18:42
Bon-Nr. 4821  Kasse 3
Vielen Dank für Ihren Einkauf!
"""

BANK_STATEMENT = """Sparkasse KölnBonn
Kontoauszug Nr. 3/2024
Kontoinhaber: Max Mustermann
IBAN: DE46 3705 0198 0000 1234 56

Auszugsdatum 31.03.2024
Buchungstag Wertstellung Verwendungszweck              Betrag
01.03.2024  01.03.2024  Miete März                   -850,00 EUR
05.03.2024  05.03.2024  Gehalt Acme GmbH            2.500,00 EUR
Alter Saldo                                           1.200,00 EUR
Neuer Saldo                                           2.850,00 EUR
"""

CONTRACT = """Mietvertrag

zwischen
Hausverwaltung Schmidt GmbH & Co. KG, Parkallee 12, 28209 Bremen
- nachfolgend Vermieter -
und
Herrn Max Mustermann, Lindwurmstraße 88, 80337 München
- nachfolgend Mieter -

Vertragsnummer: MV-2024-017

§ 1 Mietsache
Vermietet wird die Wohnung im 2. OG links.
§ 2 Miete
Die monatliche Miete beträgt 950,00 EUR zuzüglich Nebenkosten von 180,00 EUR.
§ 3 Laufzeit
Der Vertrag beginnt am 01.05.2024 und läuft auf unbestimmte Zeit.

Bremen, den 15.04.2024
"""


def extract(text: str, filename: str = "scan.pdf") -> ExtractedMetadata:
    return RulesExtractor().extract(text=text, original_filename=filename)


def eur(value: str) -> Amount:
    return Amount(Decimal(value), "EUR")


@pytest.fixture(scope="module")
def warm_extractor() -> RulesExtractor:
    # The language model and dateparser load once per process, so the bound below is not spent on it.
    extractor = RulesExtractor()
    extractor.extract(text=GERMAN_INVOICE + ENGLISH_INVOICE, original_filename="warm-up.pdf")
    return extractor


# --- the extractor as a whole --------------------------------------------------------------------


def test_rules_extractor_is_a_metadata_extractor_named_rules():
    extractor: MetadataExtractor = RulesExtractor()
    assert extractor.name == "rules"


def test_german_invoice_yields_date_total_and_number():
    result = extract(GERMAN_INVOICE)
    assert result.document_date == date(2024, 3, 12)
    assert result.amounts[0] == eur("104.13")
    assert result.reference_number == "RE-4711"
    assert result.document_type == "invoice"
    assert result.language == "de"


def test_german_invoice_lists_every_amount_once_with_the_total_first():
    assert extract(GERMAN_INVOICE).amounts == (
        eur("104.13"),
        eur("75.00"),
        eur("12.50"),
        eur("87.50"),
        eur("16.63"),
    )


def test_german_invoice_names_sender_recipient_and_correspondent_from_the_window_envelope_layout():
    result = extract(GERMAN_INVOICE)
    assert result.sender == "Stadtwerke München GmbH"
    assert result.recipient == "Max Mustermann"
    assert result.correspondent == "Stadtwerke München GmbH"


def test_german_invoice_gets_a_german_title_an_ascii_filename_and_full_confidence():
    result = extract(GERMAN_INVOICE)
    assert result.title == "Rechnung RE-4711 Stadtwerke München GmbH"
    assert result.filename == "2024-03-12_Rechnung_RE-4711_Stadtwerke_Muenchen_GmbH"
    assert result.ibans == ("DE89370400440532013000",)
    assert result.tags == ("invoice", "stadtwerke münchen", "energy")
    assert result.confidence == 100


def test_english_invoice_puts_the_total_due_first_in_pounds():
    result = extract(ENGLISH_INVOICE)
    pounds = [Amount(Decimal(v), "GBP") for v in ("1254.60", "1000.00", "45.50", "1045.50", "209.10")]
    assert result.amounts == tuple(pounds)
    assert result.document_date == date(2024, 3, 12)
    assert result.reference_number == "INV-2024-0815"


def test_english_invoice_finds_the_letterhead_the_bill_to_block_and_the_iban():
    result = extract(ENGLISH_INVOICE)
    assert result.sender == "ACME Widgets Ltd"
    assert result.recipient == "Globex Corporation"
    assert result.correspondent == "ACME Widgets Ltd"
    assert result.ibans == ("GB82WEST12345698765432",)
    assert result.language == "en"
    assert result.document_type == "invoice"
    assert result.title == "Invoice INV-2024-0815 ACME Widgets Ltd"
    assert result.filename == "2024-03-12_Invoice_INV-2024-0815_ACME_Widgets_Ltd"


def test_dollar_invoice_reads_a_slashed_date_month_first():
    result = extract(US_INVOICE)
    assert result.document_date == date(2024, 3, 12)
    assert result.amounts[0] == Amount(Decimal("1234.56"), "USD")
    assert result.reference_number == "10045"
    assert result.correspondent == "Initech LLC"
    assert result.language == "en"


def test_german_letter_takes_the_date_after_the_place_and_the_subject_as_title():
    result = extract(GERMAN_LETTER)
    assert result.document_type == "letter"
    assert result.document_date == date(2024, 2, 5)
    assert result.sender == "Techniker Krankenkasse"
    assert result.recipient == "Erika Musterfrau"
    assert result.correspondent == "Techniker Krankenkasse"
    assert result.language == "de"
    assert result.title == "Ihre Mitgliedschaft ab dem 1. April 2024 - Techniker Krankenkasse"
    assert result.filename == "2024-02-05_Ihre_Mitgliedschaft_ab_dem_1._April_2024_-_Techniker_Krankenkasse"
    assert result.amounts == ()
    assert result.reference_number is None


def test_english_letter_reads_a_us_address_and_a_written_out_date():
    result = extract(ENGLISH_LETTER)
    assert result.document_type == "letter"
    assert result.document_date == date(2024, 6, 3)
    assert result.sender == "Northwind Traders Inc."
    assert result.recipient == "Ms. Jane Doe"
    assert result.correspondent == "Northwind Traders Inc."
    assert result.language == "en"
    assert result.title == "Change of our office hours - Northwind Traders Inc."
    assert result.filename == "2024-06-03_Change_of_our_office_hours_-_Northwind_Traders_Inc"


def test_a_private_persons_cancellation_letter_has_the_company_as_correspondent():
    result = extract(CANCELLATION_LETTER)
    assert result.document_type == "letter"
    assert result.sender == "Max Mustermann"
    assert result.recipient == "Telekom Deutschland GmbH"
    assert result.correspondent == "Telekom Deutschland GmbH"
    assert result.reference_number == "556677"
    assert result.document_date == date(2024, 1, 3)


def test_receipt_yields_total_date_and_receipt_number():
    result = extract(RECEIPT)
    assert result.document_type == "receipt"
    assert result.document_date == date(2024, 3, 14)
    assert result.amounts == (eur("5.67"), eur("1.99"), eur("1.19"), eur("2.49"))
    assert result.reference_number == "4821"
    assert result.correspondent == "REWE Markt GmbH"
    assert result.language == "de"
    assert result.filename == "2024-03-14_Quittung_4821_REWE_Markt_GmbH"


def test_bank_statement_keeps_debits_negative_the_new_balance_first_and_its_statement_number():
    result = extract(BANK_STATEMENT)
    assert result.document_type == "bank_statement"
    assert result.document_date == date(2024, 3, 31)
    assert result.amounts == (eur("2850.00"), eur("-850.00"), eur("2500.00"), eur("1200.00"))
    assert result.ibans == ("DE46370501980000123456",)
    assert result.correspondent == "Sparkasse KölnBonn"
    assert result.reference_number == "3/2024"
    assert result.title == "Kontoauszug 3-2024 Sparkasse KölnBonn"
    assert result.filename == "2024-03-31_Kontoauszug_3-2024_Sparkasse_KoelnBonn"


def test_contract_yields_contract_number_landlord_and_signing_date():
    result = extract(CONTRACT)
    assert result.document_type == "contract"
    assert result.reference_number == "MV-2024-017"
    assert result.correspondent == "Hausverwaltung Schmidt GmbH & Co. KG"
    # The start of the lease is a period, not the date the contract was made.
    assert result.document_date == date(2024, 4, 15)
    assert result.amounts == (eur("950.00"), eur("180.00"))
    assert result.title == "Vertrag MV-2024-017 Hausverwaltung Schmidt GmbH & Co. KG"
    assert result.filename == "2024-04-15_Vertrag_MV-2024-017_Hausverwaltung_Schmidt_GmbH_Co._KG"


# --- document types ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "document_type"),
    [
        ("1. Mahnung\nLeider ist unsere Rechnung noch offen.\nMahngebühr: 5,00 €", "reminder"),
        ("Payment reminder\nYour invoice is overdue.", "reminder"),
        ("Angebot\nAngebotsnummer: AN-2024-33\nGültig bis: 31.01.2024", "offer"),
        ("Quotation\nQuote no. Q-17\nValid until 31 January 2024", "offer"),
        ("Auftragsbestätigung\nVielen Dank für Ihre Bestellung.", "order_confirmation"),
        ("Order confirmation\nThank you for your order.", "order_confirmation"),
        ("Lieferschein\nLieferschein-Nr.: LS-9981\n3 Stück Schrauben", "delivery_note"),
        ("Packing slip\n3 boxes", "delivery_note"),
        ("Entgeltabrechnung März 2024\nBrutto 4.000,00 EUR\nLohnsteuer 600,00 EUR", "payslip"),
        ("Payslip\nGross pay 4,000.00\nNet pay 2,600.00", "payslip"),
        ("Finanzamt München\nBescheid für 2022 über Einkommensteuer\nSteuerbescheid", "tax_document"),
        ("Versicherungsschein\nVersicherungsnummer: AS-123456789\nJahresbeitrag: 320,40 EUR", "insurance"),
        ("Arbeitszeugnis\nHerr Mustermann war bei uns beschäftigt.", "certificate"),
        ("Certificate of Attendance\nWe hereby certify that Jane Doe attended.", "certificate"),
        ("User Manual\nTable of Contents\n1 Safety instructions", "manual"),
        ("Bedienungsanleitung\nInhaltsverzeichnis\nSicherheitshinweise", "manual"),
        ("Kontoauszug\nAlter Saldo 100,00 EUR\nNeuer Saldo 90,00 EUR", "bank_statement"),
        ("Quittung\nBetrag dankend erhalten: 50,00 EUR", "receipt"),
        ("Rechnung\nRechnungsnummer 17", "invoice"),
        ("Tomorrow it will rain in the north and the south.", "other"),
    ],
)
def test_document_type_comes_from_german_and_english_keywords(text, document_type):
    assert extract(text).document_type == document_type


def test_every_document_type_is_one_of_the_canonical_types():
    texts = [
        GERMAN_INVOICE,
        ENGLISH_INVOICE,
        GERMAN_LETTER,
        ENGLISH_LETTER,
        RECEIPT,
        BANK_STATEMENT,
        CONTRACT,
        US_INVOICE,
        CANCELLATION_LETTER,
    ]
    assert {extract(text).document_type for text in texts} <= set(DOCUMENT_TYPES)


def test_a_heading_outweighs_keywords_mentioned_in_the_body():
    text = "Mahnung\nzu unserer Rechnung Nr. R-1 vom 01.02.2024 und der Rechnung Nr. R-2 vom 01.03.2024"
    assert extract(text).document_type == "reminder"


# --- dates ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "written",
    [
        "12.03.2024",
        "12.03.24",
        "12. März 2024",
        "12. Maerz 2024",
        "12. Mär. 2024",
        "March 12, 2024",
        "Mar 12th, 2024",
        "12 March 2024",
        "12th of March 2024",
        "2024-03-12",
        "12/03/2024",
        "12-03-2024",
    ],
)
def test_document_date_reads_german_and_english_spellings(written):
    assert extract(f"Datum: {written}").document_date == date(2024, 3, 12)


def test_labelled_invoice_date_wins_over_an_earlier_plain_date():
    text = "Bestellung vom 01.02.2024\nLieferdatum 05.02.2024\nRechnungsdatum: 12.03.2024"
    assert extract(text).document_date == date(2024, 3, 12)


def test_a_due_date_is_not_taken_as_the_document_date():
    text = "Fällig am 30.04.2024\nRechnung\nBerlin, 02.04.2024"
    assert extract(text).document_date == date(2024, 4, 2)


def test_a_date_under_a_label_in_a_table_counts_as_labelled():
    text = "Lieferung 01.01.2024\nRechnungsdatum\n12.03.2024"
    assert extract(text).document_date == date(2024, 3, 12)


def test_dates_far_in_the_future_or_before_1900_are_rejected(clock):
    future = timezone.localdate() + timedelta(days=3 * 365)
    text = f"Datum: {future:%d.%m.%Y}\nGeboren 1850: 01.01.1850\nBrief vom 07.05.2021"
    assert extract(text).document_date == date(2021, 5, 7)


def test_impossible_dates_are_skipped():
    assert extract("Datum: 31.02.2024\nund 00.00.0000").document_date is None


def test_dateparser_only_ever_sees_short_candidates(monkeypatch):
    seen: list[str] = []
    original = rules_dates._parse

    def spy(text: str, order: str) -> date | None:
        seen.append(text)
        return original(text, order)

    monkeypatch.setattr(rules_dates, "_parse", spy)
    extract(GERMAN_INVOICE + "x" * 50_000 + "Datum 01.01.2020")
    assert seen
    assert max(len(text) for text in seen) <= 30


# --- amounts -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "amount"),
    [
        ("1.234,56 €", Amount(Decimal("1234.56"), "EUR")),
        ("EUR 99.00", Amount(Decimal("99.00"), "EUR")),
        ("99,- EUR", Amount(Decimal("99"), "EUR")),
        ("$1,234.56", Amount(Decimal("1234.56"), "USD")),
        ("USD 5", Amount(Decimal("5"), "USD")),
        ("CHF 12.50", Amount(Decimal("12.50"), "CHF")),
        ("1'234.50 CHF", Amount(Decimal("1234.50"), "CHF")),
        ("£12", Amount(Decimal("12"), "GBP")),
        ("-45,00 €", Amount(Decimal("-45.00"), "EUR")),
        ("1.234.567,89 EUR", Amount(Decimal("1234567.89"), "EUR")),
    ],
)
def test_amounts_are_read_with_their_currency(written, amount):
    assert extract(f"Betrag {written} heute").amounts == (amount,)


def test_totals_come_first_and_duplicates_go():
    text = "Position 10,00 €\nPosition 10,00 €\nZwischensumme 20,00 €\nGesamtbetrag: 23,80 €\nSumme 23,80 €"
    assert extract(text).amounts == (eur("23.80"), eur("10.00"), eur("20.00"))


def test_a_total_without_currency_takes_the_documents_currency():
    text = "Artikel 1.000,00 EUR\nUSt 190,00 EUR\nRechnungsbetrag: 1.190,00"
    assert extract(text).amounts == (eur("1190.00"), eur("1000.00"), eur("190.00"))


def test_numbers_without_currency_are_not_amounts():
    assert extract("Menge 12\nKundennummer 100234567\nSeite 1 von 2\nPLZ 80331").amounts == ()


# --- reference numbers and IBANs -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reference"),
    [
        ("Rechnungsnummer: RE-4711", "RE-4711"),
        ("Rechnung Nr. 2024-0815 vom 12.03.2024", "2024-0815"),
        ("Rechnungs-Nr.: 88123", "88123"),
        ("Invoice No.: INV-2024-001", "INV-2024-001"),
        ("Invoice number 12345", "12345"),
        ("Invoice #A17-22", "A17-22"),
        ("Kundennummer 100234567", "100234567"),
        ("Order no. A-77812", "A-77812"),
        ("Vertragsnummer: V/2024/17", "V/2024/17"),
        ("Rechnungsnummer\nRE-99", "RE-99"),
    ],
)
def test_reference_numbers_follow_their_labels(text, reference):
    assert extract(text).reference_number == reference


def test_the_invoice_number_is_preferred_over_the_customer_number():
    assert extract("Kundennummer: 555111\nRechnungsnummer: RE-1234").reference_number == "RE-1234"


def test_a_contract_prefers_its_contract_number():
    text = "Vertrag\nKundennummer: 555111\nVertragsnummer: MV-17"
    assert extract(text).reference_number == "MV-17"


def test_a_label_without_a_number_gives_no_reference():
    assert extract("Rechnungsnummer: siehe oben\nKundennummer: bitte angeben").reference_number is None


def test_ibans_are_validated_normalised_and_deduplicated():
    text = (
        "IBAN DE89 3704 0044 0532 0130 00\n"
        "IBAN: DE89370400440532013000\n"
        "Falsch: DE89 3704 0044 0532 0130 01\n"
        "Wien: AT61 1904 3002 3457 3201 BIC: BKAUATWW\n"
        "Zürich: CH93 0076 2011 6238 5295 7"
    )
    assert extract(text).ibans == ("DE89370400440532013000", "AT611904300234573201", "CH9300762011623852957")


# --- language ------------------------------------------------------------------------------------


def test_the_bundled_language_model_is_available_offline():
    # py3langid ships its model in the wheel; without it only German and English are told apart.
    assert rules_language._language_identifier() is not None


@pytest.mark.parametrize(
    ("text", "language"),
    [
        (GERMAN_LETTER, "de"),
        (ENGLISH_LETTER, "en"),
        (
            "Madame, Monsieur, nous vous remercions de votre commande et vous prions de trouver la facture.",
            "fr",
        ),
        ("Gentile cliente, la ringraziamo per il suo ordine e le inviamo in allegato la fattura.", "it"),
    ],
)
def test_language_is_an_iso_639_1_code(text, language):
    assert extract(text).language == language


@pytest.mark.parametrize("text", ["", "12,50 €", "!!! ??? ...", "x" * 1_000])
def test_language_is_none_without_words(text):
    assert extract(text).language is None


def test_german_and_english_are_told_apart_without_the_language_model(monkeypatch):
    monkeypatch.setattr(rules_language, "_language_identifier", lambda: None)
    assert extract(GERMAN_LETTER).language == "de"
    assert extract(ENGLISH_LETTER).language == "en"
    assert extract("Bonjour tout le monde").language is None


# --- title, filename, tags, confidence -----------------------------------------------------------


def test_without_any_content_the_title_is_the_uploaded_files_name():
    result = extract("", filename="C:\\Scans\\2024\\Scan 0001.PDF")
    assert result.title == "Scan 0001"
    assert result.filename == "Scan_0001"
    assert result.confidence == 0


def test_without_a_type_the_title_is_the_first_meaningful_line():
    result = extract("4711 / 2024\n---\nProtokoll der Mitgliederversammlung\nTagesordnung", "x.pdf")
    assert result.title == "Protokoll der Mitgliederversammlung"


def test_a_heading_becomes_the_title_when_there_is_no_number_or_correspondent():
    assert extract("Entgeltabrechnung März 2024\nBrutto 4.000,00 EUR").title == "Entgeltabrechnung März 2024"


def test_titles_are_short_and_free_of_path_separators_and_control_characters():
    subject = "Betreff: " + "Sehr lange Angelegenheit/mit\\Schrägstrichen\x07 " * 10
    title = extract(subject).title
    assert title is not None
    assert len(title) <= 80
    assert not set(title) & {"/", "\\", "\x07", "\n"}


def test_filename_has_no_date_when_the_document_has_none():
    assert extract("Rechnung\nRechnungsnummer: RE-1\nAcme GmbH").filename == "Rechnung_RE-1_Acme_GmbH"


def test_filenames_are_ascii_without_leading_dots_and_at_most_100_characters():
    # Each umlaut becomes two letters, so an 80-character title can outgrow 100 characters.
    result = extract("Betreff: ...Überweisung für Größe ÄÖÜ ß € " + "Übergröße " * 8 + "\nDatum: 01.02.2024")
    assert result.filename is not None
    assert result.filename.startswith("2024-02-01_Ueberweisung_fuer_Groesse_AeOeUe_ss_Uebergroesse_")
    assert result.filename.isascii()
    assert len(result.filename) == 100
    assert "." not in result.filename[:11]


def test_tags_are_lowercase_and_at_most_max_tags():
    text = GERMAN_INVOICE + "\nStrom Internet Miete Arzt Hotel Fahrzeug"
    tags = extract(text).tags
    assert tags[:2] == ("invoice", "stadtwerke münchen")
    assert len(tags) == MAX_TAGS
    assert all(tag == tag.lower() for tag in tags)


def test_confidence_grows_with_the_fields_found():
    sparse = extract("Rechnung").confidence
    some = extract("Rechnung\nRechnungsdatum: 12.03.2024\nGesamtbetrag 10,00 €").confidence
    full = extract(GERMAN_INVOICE).confidence
    assert sparse is not None
    assert some is not None
    assert full is not None
    assert 0 < sparse < some < full <= 100


def test_no_correspondent_is_better_than_a_wrong_one():
    result = extract("Kassenzettel\n12 x Brötchen\n3,60 EUR\nDanke!")
    assert result.correspondent is None
    assert result.sender is None
    assert result.recipient is None


# --- odd input -----------------------------------------------------------------------------------

_RANDOM = random.Random(1)
ODD_INPUTS = {
    "empty": "",
    "whitespace": " \n\t\r\n " * 1_000,
    "punctuation": "!?.,;:-\u2013\u2014()[]{}§$%&/" * 5_000,
    "printable noise": "".join(_RANDOM.choice(string.printable) for _ in range(100_000)),
    "binary garbage": bytes(_RANDOM.randrange(256) for _ in range(100_000)).decode("latin-1"),
    "unicode noise": "".join(chr(_RANDOM.randrange(0x20, 0x3000)) for _ in range(100_000)),
    "nul bytes": "\x00" * 100_000,
    "lone surrogates": "\ud800abc\udfff" * 10_000,
    "one long number": "1" * 100_000,
    "dotted digits": "1.2," * 25_000,
    "iban-like prefixes": "DE89 " * 20_000,
    "currency soup": "€$£ 1,2.3 EUR " * 8_000,
    "date soup": "12.03.2024 März 2024 12/ " * 4_000,
    "keyword soup": "Rechnung Mahnung GmbH Straße 1 80331 München Datum: Summe " * 2_000,
    "one long line of letters": "a" * 100_000,
    "slashes and dots": "/..\\" * 25_000,
}


# A pattern that backtracks without end on such input takes minutes or forever: this bound,
# far above a normal run, catches it. How fast extraction is, bench/ measures.
CATASTROPHIC = 30


@pytest.mark.timeout(CATASTROPHIC)
@pytest.mark.parametrize("text", ODD_INPUTS.values(), ids=ODD_INPUTS.keys())
def test_odd_input_returns_metadata_quickly_and_never_raises(warm_extractor, text):
    result = warm_extractor.extract(text=text, original_filename="../../etc/odd file.pdf")
    assert isinstance(result, ExtractedMetadata)
    assert result.document_type in DOCUMENT_TYPES
    assert result.confidence is not None
    assert 0 <= result.confidence <= 100
    assert result.title
    assert "/" not in result.title
    assert result.title.isprintable()
    assert result.filename
    assert result.filename.isascii()
    assert "/" not in result.filename
    assert len(result.tags) <= MAX_TAGS


def test_noise_does_not_invent_a_language_title_or_correspondent(warm_extractor):
    result = warm_extractor.extract(text=ODD_INPUTS["unicode noise"], original_filename="noise.pdf")
    assert result.language is None
    assert result.correspondent is None
    assert result.title == "noise"


@pytest.mark.timeout(CATASTROPHIC)
def test_a_long_real_document_is_handled_without_a_pathological_slowdown(warm_extractor):
    text = (GERMAN_INVOICE + ENGLISH_INVOICE + CONTRACT) * 60
    assert len(text) > 100_000
    result = warm_extractor.extract(text=text, original_filename="long.pdf")
    assert result.document_type == "invoice"
    assert result.reference_number == "RE-4711"


def test_an_internal_error_still_returns_metadata(monkeypatch, caplog):
    def broken(text: str) -> tuple[Amount, ...]:
        raise ValueError("boom")

    monkeypatch.setattr(rules, "find_amounts", broken)
    result = extract(GERMAN_INVOICE, filename="uploads/Rechnung März.pdf")
    assert result.title == "Rechnung März"
    assert result.filename == "Rechnung_Maerz"
    assert result.confidence == 0
    assert "rules extractor failed" in caplog.text


# --- the total, French documents, letterheads ------------------------------------------------


def test_a_payslips_total_is_the_net_pay_paid_out_not_the_gross():
    text = (
        "Muster GmbH · Hauptstraße 1 · 10115 Berlin\nGehaltsabrechnung März 2024\n"
        "Gesamtbrutto 4.440,00\nSumme Abzüge 1.598,89\nNettoverdienst 2.841,11\n"
        "Vermögenswirksame Anlage -40,00\nAuszahlungsbetrag 2.801,11\n"
    )
    result = extract(text)
    assert result.document_type == "payslip"
    assert result.total == eur("2801.11")


def test_an_insurance_notices_total_is_the_premium_not_the_cover_limit_or_last_years_premium():
    text = (
        "Beitragsrechnung Privathaftpflicht\nVersicherungsschein-Nr.: PH 7731 224\n"
        "Deckungssumme 10.000.000,00 EUR\nSelbstbeteiligung 150,00 EUR\nVorjahresbeitrag 89,90 EUR\n"
        "Jahresbeitrag netto 81,08 EUR\nZu zahlender Beitrag 96,48 EUR\n"
    )
    result = extract(text)
    assert result.total == eur("96.48")
    assert result.reference_number == "PH 7731 224"


def test_a_letter_that_mentions_a_limit_has_no_total():
    text = "Dear Mrs Price,\nyour arranged overdraft limit of £1,000 stays the same.\nYours sincerely"
    assert extract(text).total is None


def test_an_invoice_total_is_the_amount_due_not_the_net_or_the_gross_before_advance_payments():
    text = (
        "Rechnung Nr. 31004\nNettobetrag 860,13 EUR\nUmsatzsteuer 19 % 163,42 EUR\n"
        "Gesamtbetrag brutto 1.023,55 EUR\nabzüglich geleistete Abschläge -836,12 EUR\n"
        "Rechnungsbetrag (Nachzahlung) 187,43 EUR\n"
    )
    assert extract(text).total == eur("187.43")


def test_the_total_is_in_the_metadata_json_with_value_and_currency():
    metadata = extract("Invoice\nSubtotal £469.00\nVAT £93.80\nTotal due £562.80\n").as_metadata_json()
    assert metadata["total"] == {"value": "562.80", "currency": "GBP"}


def test_a_french_invoice_yields_its_numero_de_facture_date_type_and_total_ttc():
    text = (
        "Plomberie Lambert SARL\nPlomberie Lambert SARL, 3 rue des Forges, 67000 Strasbourg\n"
        "Madame Nathalie Klein\n15 rue du Dôme\n67000 Strasbourg\n"
        "FACTURE N° F-2024-118\nDate : 12/04/2024\nDate d'intervention : 08/04/2024\n"
        "Total HT 1 630,00 €\nTVA 10 % 163,00 €\nTotal TTC 1 793,00 €\n"
    )
    result = extract(text)
    assert result.document_type == "invoice"
    assert result.reference_number == "F-2024-118"
    assert result.document_date == date(2024, 4, 12)
    assert result.total == eur("1793.00")
    assert result.correspondent == "Plomberie Lambert SARL"


def test_french_words_count_without_their_accents_as_ocr_often_loses_them():
    text = "AVIS D'ECHEANCE\nContrat automobile n° AUTO-3301-88\nCotisation precedente 552,10 €\n"
    text += "Cotisation annuelle TTC 587,40 €\n"
    result = extract(text)
    assert result.document_type == "insurance"
    assert result.reference_number == "AUTO-3301-88"
    assert result.total == eur("587.40")


def test_the_letters_own_date_line_wins_over_an_earlier_due_date_and_a_later_dated_reference():
    text = (
        "Oakridge Print Co. Ltd\n14 Mill Street · Bath BA1 1NS\nPayment was due on 15 May 2024.\n"
        "3 June 2024\nFINAL REMINDER\nInvoice no. OP-8812 dated 15 April 2024\n"
    )
    result = extract(text)
    assert result.document_date == date(2024, 6, 3)
    assert result.document_type == "reminder"


def test_a_french_letter_is_dated_by_its_place_and_le():
    text = "Box Télécom SAS\nLille, le 3 mai 2024\nVotre box avant le 7 juin 2024.\nSalutations distinguées"
    assert extract(text).document_date == date(2024, 5, 3)


def test_a_date_takes_the_label_just_before_it_not_one_earlier_on_the_line():
    text = "Pers.-Nr.: 0047   Geb.-Datum: 02.12.1999   Eintritt: 01.08.2021\nDatum: 31.01.2024\n"
    assert extract(text).document_date == date(2024, 1, 31)


def test_the_letterhead_company_is_the_correspondent_not_its_street_tagline_or_the_recipient():
    text = (
        "Greenfield Office Supplies Ltd\nUnit 4, Riverside Business Park, Leeds LS11 5DJ\n"
        "Bill to:\nHarper Cole Holdings Ltd\n12 Park Row\nLeeds LS1 5HD\nInvoice number: INV-20417\n"
    )
    result = extract(text)
    assert result.correspondent == "Greenfield Office Supplies Ltd"
    assert result.reference_number == "INV-20417"


def test_a_tagline_under_the_company_name_is_not_the_correspondent():
    text = (
        "Summit Web Services Inc.\nCloud hosting that just works\n1450 Larimer Street, Suite 300\n"
        "Denver, CO 80202\nINVOICE\nAmount due $1,287.50\n"
    )
    result = extract(text)
    assert result.correspondent == "Summit Web Services Inc."
    assert result.total == Amount(Decimal("1287.50"), "USD")


@pytest.mark.parametrize(
    ("text", "document_type", "reference"),
    [
        ("Finanzamt Freiburg-Stadt\nSteuernummer 06471/12345\nBescheid für 2023 über Einkommensteuer",
         "tax_document", "06471/12345"),
        ("HM Revenue & Customs\nUnique Taxpayer Reference (UTR) 4471209318\nSimple Assessment",
         "tax_document", "4471209318"),
        ("Kassenbon\nSUMME EUR 5,00\nBon-Nr.: 4711\nSt.-Nr. 66/123/45678", "receipt", "4711"),
        ("Lohnabrechnung\nPers.-Nr.: 0047   Eintritt: 01.08.2021\nAuszahlungsbetrag 1.642,58",
         "payslip", "0047"),
    ],
)  # fmt: skip
def test_tax_and_personnel_numbers_are_found_only_on_their_own_document_types(text, document_type, reference):
    result = extract(text)
    assert result.document_type == document_type
    assert result.reference_number == reference


def test_a_table_header_label_takes_the_value_in_its_column_of_the_next_line():
    text = (
        "Zahlungserinnerung\nKundennummer 30477\n"
        "Rechnungsnummer   Rechnungsdatum   Fällig am     Betrag\n"
        "RE-2024-0012      02.01.2024       16.01.2024    467,09 EUR\n"
    )
    assert extract(text).reference_number == "RE-2024-0012"


def test_a_german_document_without_any_currency_has_its_total_in_euros():
    text = "Entgeltabrechnung\nGesamtbrutto 2.301,96\nNetto 1.642,58\nAuszahlungsbetrag 1.642,58\n"
    assert extract(text).total == eur("1642.58")
