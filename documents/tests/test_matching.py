"""Matching that learns: trained on one owner's documents, it suggests their type, correspondent
and tags for new ones, says how sure it is, and is stored only in a form nobody can change."""

from __future__ import annotations

import hashlib
import hmac
import pickle
import random

import pytest
import sklearn

from docuelevate.encryption import purpose_keys
from documents.matching import (
    MATCHING_CONFIDENCE_THRESHOLD,
    MATCHING_MIN_DOCUMENTS,
    Suggestions,
    TrainingSample,
    matcher_train,
    storage,
)
from documents.matching.storage import (
    MatcherSignatureInvalid,
    MatcherVersionMismatch,
    matcher_dumps,
    matcher_loads,
)
from documents.matching.text import WORD_CHARS, matching_text

OTHER_SECRET = "another-session-secret-0123456789-abcdefghij"
SECRET = "the-session-secret-9876543210-klmnopqrstuvwxyz"

# Three correspondents, each with its own recurring kinds of documents and wording.
WRITERS = {
    ("Telekom", "Invoice", ("utilities",)): [
        "Telekom Deutschland GmbH · Landgrabenweg 151 · 53227 Bonn\nRechnung\nKundennummer {n}\n"
        "Ihre Rechnung für {month}: MagentaZuhause M {amount} €, Verbindungen, Summe {amount} €",
        "Telekom Deutschland GmbH\nIhre Rechnung {month}\nMagentaZuhause Festnetz und Internet "
        "{amount} €\nDer Betrag wird von Ihrem Konto abgebucht. Buchungskonto {n}",
    ],
    ("Allianz", "Insurance", ("car", "insurance")): [
        "Allianz Versicherungs-AG · Königinstraße 28 · 80802 München\nVersicherungsschein "
        "Kfz-Versicherung\nVersicherungsnummer AS-{n}\nKfz-Haftpflicht {amount} €, Vollkasko, "
        "Kennzeichen M-JB {n}",
        "Allianz Versicherungs-AG\nNachtrag zum Versicherungsschein\nIhre Kfz-Versicherung, "
        "Schadenfreiheitsklasse, Jahresbeitrag {amount} € für Ihr Fahrzeug",
    ],
    ("Dr. Weber", "Invoice", ("health",)): [
        "Praxis Dr. med. Anna Weber · Fachärztin für Allgemeinmedizin\nPrivatliquidation\n"
        "Rechnungsnummer {n}\nGOÄ 1 Beratung {amount} €, GOÄ 5 Untersuchung, Patientin",
        "Praxis Dr. med. Anna Weber\nRechnung nach GOÄ\nBehandlung vom {month}\nGOÄ 3 Eingehende "
        "Beratung {amount} €, Blutentnahme, zahlbar innerhalb von 30 Tagen",
    ],
}
MONTHS = ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August")


def documents(count: int, seed: int = 1) -> list[TrainingSample]:
    """``count`` documents, in turn from each correspondent, with their own numbers and amounts."""
    rng = random.Random(seed)
    kinds = list(WRITERS.items())
    made = []
    for index in range(count):
        (correspondent, document_type, tags), templates = kinds[index % len(kinds)]
        text = rng.choice(templates).format(
            n=rng.randint(100000, 999999), amount=f"{rng.uniform(10, 900):.2f}", month=rng.choice(MONTHS)
        )
        made.append(TrainingSample(text, document_type, correspondent, tags))
    return made


def trained(samples):
    matcher = matcher_train(samples)
    assert matcher is not None
    return matcher


@pytest.fixture(scope="module")
def matcher():
    return trained(documents(60))


@pytest.fixture
def session_secret(settings):
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = SECRET, []
    return settings


def test_new_documents_of_known_correspondents_get_their_type_correspondent_and_tags(matcher):
    suggestions = matcher.suggest(
        "Telekom Deutschland GmbH\nRechnung für September\nMagentaZuhause M 44,95 €\nKundennummer 4711"
    )
    assert suggestions.correspondent.label == "Telekom"
    assert suggestions.correspondent.confident
    assert suggestions.document_type.label == "Invoice"
    assert [tag.label for tag in suggestions.tags if tag.confident] == ["utilities"]

    policy = matcher.suggest(
        "ALLIANZ VERSICHERUNGS-AG\nVersicherungsschein Kfz-Versicherung\nBeitrag 512,10 EUR"
    )
    assert (policy.correspondent.label, policy.document_type.label) == ("Allianz", "Insurance")
    assert {tag.label for tag in policy.confident().tags} == {"car", "insurance"}


def test_a_scanned_document_with_ocr_errors_is_still_recognised(matcher):
    suggestions = matcher.suggest("Praxis Dr. rned. Anna Weher\nPrivatIiquidation\nG0Ä 1 Beratung 46,12 €")
    assert suggestions.correspondent.label == "Dr. Weber"


def test_too_few_documents_train_nothing():
    assert matcher_train(documents(MATCHING_MIN_DOCUMENTS - 1)) is None
    assert matcher_train(documents(MATCHING_MIN_DOCUMENTS)) is not None
    assert matcher_train(documents(12), min_samples=10) is not None
    assert matcher_train([TrainingSample("", "Invoice", "Telekom")] * 100) is None


def test_a_field_the_owner_gave_only_one_value_is_not_predicted():
    samples = [TrainingSample(s.text, "Letter", s.correspondent, s.tags) for s in documents(60)]
    matcher = trained(samples)
    suggestions = matcher.suggest("Telekom Deutschland GmbH\nRechnung für Mai, MagentaZuhause M 44,95 €")
    assert suggestions.document_type is None
    assert suggestions.correspondent.label == "Telekom"
    assert "document_type" not in matcher.labels


def test_a_field_labelled_on_too_few_documents_and_a_rare_tag_are_not_predicted():
    samples = documents(60)
    samples = [
        TrainingSample(
            s.text,
            s.document_type,
            s.correspondent if i < 10 else None,
            s.tags + (("rare",) if i < 2 else ()),
        )
        for i, s in enumerate(samples)
    ]
    suggestions = trained(samples).suggest(samples[0].text, tag_floor=0.0)
    assert suggestions.correspondent is None
    assert suggestions.document_type.label == samples[0].document_type
    assert "rare" not in {tag.label for tag in suggestions.tags}


def test_a_text_that_matches_two_correspondents_is_suggested_but_not_confident(matcher):
    mixed = (
        "Telekom Deutschland GmbH MagentaZuhause Rechnung Kundennummer\n"
        "Allianz Versicherungs-AG Versicherungsschein Kfz-Versicherung"
    )
    suggestions = matcher.suggest(mixed)
    assert suggestions.correspondent.label in {"Telekom", "Allianz"}
    assert suggestions.correspondent.probability < MATCHING_CONFIDENCE_THRESHOLD
    assert not suggestions.correspondent.confident
    assert suggestions.confident().correspondent is None


def test_the_threshold_decides_what_is_confident(matcher):
    text = "Telekom Deutschland GmbH Rechnung MagentaZuhause 39,95 €"
    assert matcher.suggest(text, threshold=1.0).confident() == Suggestions()
    assert matcher.suggest(text, threshold=0.0).confident().correspondent.label == "Telekom"


def test_training_twice_on_the_same_documents_gives_the_same_suggestions():
    text = "Praxis Dr. med. Anna Weber\nRechnung nach GOÄ 12,30 €"
    first, second = trained(documents(60)), trained(documents(60))
    assert first.suggest(text, tag_floor=0.0) == second.suggest(text, tag_floor=0.0)


def test_empty_text_and_text_of_no_known_words_get_no_suggestion(matcher):
    assert matcher.suggest("") == Suggestions()
    assert matcher.suggest("   \n\t ") == Suggestions()
    assert matcher.suggest(b"Telekom Rechnung") == Suggestions()  # not text
    assert matcher.suggest("\u4e2d\u6587\u6587\u6863" * 50) == Suggestions()


def test_hostile_text_is_read_only_up_to_its_bound(matcher):
    huge = "Telekom Deutschland GmbH Rechnung MagentaZuhause\n" + "x" * (10 * 1024 * 1024)
    assert len(matching_text(huge)) <= WORD_CHARS
    assert matcher.suggest(huge).correspondent.label == "Telekom"

    junk = random.Random(3).randbytes(1024 * 1024).decode("latin-1") + "\ud800\x00\uffff"
    assert len(matching_text(junk)) <= WORD_CHARS
    assert isinstance(matcher.suggest(junk), Suggestions)

    # Hostile documents among the training samples cost no more than their bound either.
    samples = [
        *documents(60),
        TrainingSample(junk, "Invoice", "Telekom"),
        TrainingSample(huge, "Invoice", "Telekom"),
    ]
    assert matcher_train(samples) is not None


def test_numbers_do_not_count_only_their_place_does():
    assert (
        matching_text("Rechnung Nr. 2024-0815 über 1.234,56 € — Müller & Söhne")
        == "rechnung nr 0 0 uber 0 0 0 muller sohne"
    )


def test_a_stored_matcher_loads_and_suggests_the_same(matcher, session_secret):
    text = "Allianz Versicherungs-AG Versicherungsschein Kfz"
    loaded = matcher_loads(matcher_dumps(matcher))
    assert loaded.suggest(text) == matcher.suggest(text)
    assert loaded.trained_on == 60


def test_a_changed_byte_anywhere_is_refused(matcher, session_secret):
    blob = matcher_dumps(matcher)
    for position in (len(storage.MAGIC) + 3, len(blob) // 2, len(blob) - 1):
        tampered = bytearray(blob)
        tampered[position] ^= 0x01
        with pytest.raises(MatcherSignatureInvalid):
            matcher_loads(bytes(tampered))
    for broken in (b"", blob[:40], b"not a matcher at all", blob + b"x"):
        with pytest.raises(MatcherSignatureInvalid):
            matcher_loads(broken)


RAN: list[str] = []


def _record(what: str) -> str:
    RAN.append(what)
    return what


class _Payload:
    """Unpickling this runs _record: what an attacker's bytes would do instead."""

    def __reduce__(self):
        return (_record, ("unpickled",))


def _blob_signed_with(key: bytes) -> bytes:
    header = storage._header()
    signed = len(header).to_bytes(2, "big") + header + pickle.dumps(_Payload())
    return storage.MAGIC + hmac.new(key, signed, hashlib.sha256).digest() + signed


def test_a_forged_blob_is_refused_before_anything_is_unpickled(session_secret):
    RAN.clear()
    with pytest.raises(MatcherSignatureInvalid):
        matcher_loads(_blob_signed_with(b"\x00" * 32))
    assert RAN == []
    # The same bytes under the real key are unpickled (and then refused as no matcher):
    # so the check above, not a harmless payload, is what kept them from running.
    with pytest.raises(storage.MatcherBlobRefused):
        matcher_loads(_blob_signed_with(purpose_keys(info=storage._KEY_INFO)[0]))
    assert RAN == ["unpickled"]


def test_another_session_secret_refuses_and_the_previous_one_still_opens(matcher, settings):
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = OTHER_SECRET, []
    blob = matcher_dumps(matcher)
    settings.SECRET_KEY = SECRET
    with pytest.raises(MatcherSignatureInvalid):
        matcher_loads(blob)
    settings.SECRET_KEY_FALLBACKS = [OTHER_SECRET]  # during a rotation
    assert matcher_loads(blob).trained_on == 60


def test_a_matcher_stored_by_another_scikit_learn_version_is_refused(matcher, session_secret, monkeypatch):
    monkeypatch.setattr(sklearn, "__version__", "1.5.0")
    blob = matcher_dumps(matcher)
    monkeypatch.undo()
    with pytest.raises(MatcherVersionMismatch) as refused:
        matcher_loads(blob)
    assert "1.5.0" in str(refused.value)
