"""The document type, from weighted German, English and French keywords."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator

from documents.metadata.rules.text import SPACES, fold

# Keyword -> weight. A keyword matches at a word start, so "rechnung" also counts "Rechnungsnummer"
# (but not "Abrechnung"); those in _WHOLE_WORDS must end at a word end too. Keywords and text are
# compared without accents (see text.fold), as OCR often loses them.
_TYPE_KEYWORDS: dict[str, dict[str, int]] = {
    "invoice": {"rechnung": 4, "invoice": 4, "jahresabrechnung": 6, "jahresrechnung": 6,
                "schlussrechnung": 6, "abschlagsrechnung": 6, "umsatzsteuer": 1, "mwst": 1, "ust": 1,
                "vat": 1, "zahlbar bis": 1, "zahlungsziel": 1, "payment terms": 1, "payable": 1,
                "bill": 4, "billing period": 2, "amount due": 1, "facture": 4, "tva": 1, "montant ht": 1,
                "total ttc": 1},
    "receipt": {"quittung": 5, "kassenbon": 5, "kassenbeleg": 5, "receipt": 5, "bon": 2, "rückgeld": 2,
                "kartenzahlung": 1, "girocard": 1, "contactless": 1, "kontaktlos": 1, "card payment": 1,
                "vielen dank für ihren einkauf": 3, "thank you for shopping": 3, "ticket de caisse": 5,
                "ticket": 3, "caisse": 2, "merci de votre visite": 3, "thank you for your visit": 3},
    "contract": {"vertrag": 4, "mietvertrag": 6, "arbeitsvertrag": 6, "kaufvertrag": 6, "darlehensvertrag": 6,
                 "rahmenvertrag": 6, "contract": 4, "agreement": 4, "vereinbarung": 3, "vertragsparteien": 2,
                 "parties": 2, "hereinafter": 2, "nachfolgend": 2, "laufzeit": 1, "kündigungsfrist": 1,
                 "termination": 1, "contrat": 4, "ci-après dénommé": 2, "les soussignés": 2,
                 "résiliation du contrat": 1, "prend effet": 1},
    "bank_statement": {"kontoauszug": 6, "bank statement": 6, "account statement": 6,
                       "statement of account": 6, "alter saldo": 3, "neuer saldo": 3, "opening balance": 3,
                       "closing balance": 3, "kontostand": 2, "buchungstag": 2, "wertstellung": 2,
                       "valuta": 2},
    # Greetings weigh little: invoices and reminders are letters too, but are filed as what they are.
    # A cancellation is a letter that mentions its contract, not a contract.
    "letter": {"sehr geehrte": 3, "dear": 3, "mit freundlichen grüßen": 3, "freundliche grüße": 3,
               "sincerely": 3, "kind regards": 3, "best regards": 3, "yours faithfully": 3, "betreff": 1,
               "subject": 1, "kündigung": 3, "cancellation": 3, "nous vous prions d'agréer": 3,
               "veuillez agréer": 3, "salutations distinguées": 3, "objet": 1, "résiliation": 3},
    "reminder": {"zahlungserinnerung": 7, "payment reminder": 7, "mahnung": 6, "reminder": 4,
                 "mahngebühr": 3, "mahnstufe": 3, "late fee": 3, "überfällig": 3, "overdue": 3,
                 "past due": 3, "final reminder": 7, "final notice": 6, "relance": 6, "impayée": 3,
                 "mise en demeure": 6, "frais de recouvrement": 2},
    "offer": {"kostenvoranschlag": 6, "angebot": 5, "quotation": 5, "quote": 4, "offer": 3,
              "gültig bis": 2, "valid until": 2, "bindefrist": 2, "devis": 6, "bon pour accord": 2,
              "validité": 1},
    "order_confirmation": {"auftragsbestätigung": 8, "bestellbestätigung": 8, "order confirmation": 8,
                           "thank you for your order": 3, "vielen dank für ihre bestellung": 3},
    "delivery_note": {"lieferschein": 8, "delivery note": 8, "packing slip": 6, "packing list": 6},
    "payslip": {"gehaltsabrechnung": 8, "lohnabrechnung": 8, "entgeltabrechnung": 8,
                "verdienstabrechnung": 8, "payslip": 8, "pay slip": 8, "pay stub": 8, "salary statement": 8,
                "earnings statement": 8, "lohnsteuer": 2, "sozialversicherung": 2, "national insurance": 2,
                "gross pay": 2, "net pay": 2, "auszahlungsbetrag": 2, "bulletin de paie": 8,
                "bulletin de salaire": 8, "fiche de paie": 8, "salaire brut": 2, "net à payer": 2,
                "net payé": 2},
    "tax_document": {"steuerbescheid": 8, "lohnsteuerbescheinigung": 8, "tax assessment": 8,
                     "notice of assessment": 8, "steuererklärung": 5, "tax return": 5, "einkommensteuer": 3,
                     "finanzamt": 3, "irs": 3, "hmrc": 3, "grundsteuerbescheid": 8, "grundsteuer": 3,
                     "bescheid": 3, "simple assessment": 8, "revenue & customs": 4, "revenue and customs": 4,
                     "tax year": 2, "unique taxpayer reference": 3, "avis d'impôt": 8, "avis d'imposition": 8,
                     "impôt sur le revenu": 3, "impôt sur les revenus": 3, "finances publiques": 3,
                     "taxe foncière": 6, "taxe d'habitation": 6},
    "insurance": {"versicherungsschein": 5, "police": 5, "insurance": 4, "versicherung": 3, "policy": 2,
                  "schadensmeldung": 2, "claim": 2, "avis d'échéance": 6, "assurance": 3, "cotisation": 2,
                  "garantie": 1, "premium": 2, "beitragsrechnung": 3},
    "certificate": {"arbeitszeugnis": 6, "zeugnis": 6, "bescheinigung": 6, "zertifikat": 6,
                    "certificate": 6, "urkunde": 6, "hereby certify": 3, "bescheinigen hiermit": 3,
                    "bestätigen hiermit": 3},
    "manual": {"handbuch": 6, "bedienungsanleitung": 6, "gebrauchsanweisung": 6, "betriebsanleitung": 6,
               "anleitung": 6, "user guide": 5, "user manual": 5, "manual": 5, "instruction manual": 5,
               "installation guide": 5, "quick start": 5, "inhaltsverzeichnis": 2, "table of contents": 2,
               "sicherheitshinweise": 2, "safety instructions": 2},
}  # fmt: skip
_WHOLE_WORDS = frozenset({
    "ust", "vat", "bon", "quote", "offer", "police", "policy", "claim", "irs", "dear", "bill", "ticket",
    "caisse", "tva", "objet",
})  # fmt: skip
KEYWORDS = {
    fold(word): (kind, weight) for kind, words in _TYPE_KEYWORDS.items() for word, weight in words.items()
}
_MIN_SCORE = 4
_HEADING_BONUS = 3  # a keyword that opens a short line near the top is the document's own heading
_HEADING_LINES = 10
_HEADING_CHARS = 40
_MAX_HITS_PER_KEYWORD = 5


def _first_letter_alternation(words: Iterable[str]) -> re.Pattern[str]:
    """A regex for any of ``words`` at a word start, as one alternation per first letter.

    That lets the regex engine reject most positions at once: a flat alternation of all
    keywords costs about a second per 100k characters.
    """
    by_first: dict[str, list[str]] = {}
    for word in sorted(words, key=len, reverse=True):  # longest first, so "pay slip" beats "pay"
        by_first.setdefault(word[0], []).append(re.escape(word[1:]))
    branches = (f"{re.escape(first)}(?:{'|'.join(rest)})" for first, rest in by_first.items())
    return re.compile(rf"\b(?:{'|'.join(branches)})")


_KEYWORD_RE = _first_letter_alternation(KEYWORDS)


def classify(text: str, lines: list[str]) -> str:
    """The best-scoring entry of DOCUMENT_TYPES; "other" when no keyword is convincing."""
    scores: Counter[str] = Counter()
    hits: Counter[str] = Counter()
    for word, _ in _keyword_hits(SPACES.sub(" ", fold(text))):
        hits[word] += 1
        if hits[word] <= _MAX_HITS_PER_KEYWORD:
            kind, weight = KEYWORDS[word]
            scores[kind] += weight
    heading_word = _heading_keyword(lines)
    if heading_word:
        kind, weight = KEYWORDS[heading_word]
        scores[kind] += weight * _HEADING_BONUS
    best = max(scores, key=lambda kind: scores[kind], default="other")
    return best if scores[best] >= _MIN_SCORE else "other"


def heading(lines: list[str]) -> str | None:
    """The document's own heading, e.g. "Entgeltabrechnung März 2024", if it has one."""
    return next((line for line in lines[:_HEADING_LINES] if opening_keyword(line)), None)


def heading_label(heading_line: str | None, document_type: str) -> str | None:
    """The type's name as the heading writes it ("Rechnung" in "Rechnung Nr. 5"), if it does."""
    word = opening_keyword(heading_line or "")
    if not heading_line or not word or KEYWORDS[word][0] != document_type:
        return None
    written = heading_line.lstrip("0123456789. ")[: len(word)]
    return written.capitalize() if written.isupper() else written


def _heading_keyword(lines: list[str]) -> str | None:
    return next((word for line in lines[:_HEADING_LINES] if (word := opening_keyword(line))), None)


def opening_keyword(line: str) -> str | None:
    """The keyword a short line opens with, ignoring a count such as "1. Mahnung"."""
    if len(line) > _HEADING_CHARS:
        return None
    lowered = fold(line).lstrip("0123456789. ")
    word, position = next(_keyword_hits(lowered), (None, -1))
    return word if position == 0 and KEYWORDS[str(word)][0] != "letter" else None


def _keyword_hits(lowered: str) -> Iterator[tuple[str, int]]:
    """(keyword, position) of every keyword in already lower-cased text."""
    for match in _KEYWORD_RE.finditer(lowered):
        word = match.group(0)
        if word in _WHOLE_WORDS and lowered[match.end() : match.end() + 1].isalpha():
            continue
        yield word, match.start()
