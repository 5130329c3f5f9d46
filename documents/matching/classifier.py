"""Per-owner classifiers: the document type, the correspondent and the tags, learnt from text.

One feature space for all three fields (TF-IDF over word 1-2-grams and character 3-4-grams
of ``matching_text``), then per field a linear model with probabilities: a multinomial
logistic regression for type and correspondent (one answer each), one logistic regression
per tag (one-vs-rest: a document has any number of tags). Linear models on TF-IDF are the
long-standing answer for short-text classification with few examples: they train on
thousands of documents in seconds, answer in milliseconds, and their probabilities are
good enough to decide on (bench/matching.py measures how good).
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier

from documents.matching.defaults import (
    MATCHING_CONFIDENCE_THRESHOLD,
    MATCHING_MIN_DOCUMENTS,
    MATCHING_MIN_TAG_DOCUMENTS,
    MATCHING_TAG_SUGGESTION_FLOOR,
)
from documents.matching.samples import TrainingSample
from documents.matching.text import CHAR_CHARS, matching_text

# Fixed so that the same documents always give the same model (and the same suggestions).
RANDOM_STATE = 0
# Bounds on the vocabulary, hence on the model's size and the time to answer.
MAX_WORD_FEATURES = 20_000
MAX_CHAR_FEATURES = 20_000
# Inverse regularisation: TF-IDF rows are short and sparse, and a firmer fit (than sklearn's
# default 1.0) gives probabilities that separate right from wrong answers better.
_C = 10.0

FIELDS = ("document_type", "correspondent", "tags")


@dataclass(frozen=True)
class Suggestion:
    """One label the classifier proposes, how sure it is (0..1), and whether that is sure enough."""

    label: str
    probability: float
    confident: bool


@dataclass(frozen=True)
class Suggestions:
    """What the classifier proposes for one document; None or () where it has nothing to say.

    Every suggestion carries ``confident``: below the threshold it may be shown, never set.
    """

    document_type: Suggestion | None = None
    correspondent: Suggestion | None = None
    tags: tuple[Suggestion, ...] = ()

    def confident(self) -> Suggestions:
        """Only the suggestions sure enough to be set without asking."""
        return Suggestions(
            document_type=self.document_type if self.document_type and self.document_type.confident else None,
            correspondent=self.correspondent if self.correspondent and self.correspondent.confident else None,
            tags=tuple(tag for tag in self.tags if tag.confident),
        )


@dataclass
class _Features:
    words: TfidfVectorizer
    chars: TfidfVectorizer

    @classmethod
    def fit(cls, texts: list[str]) -> tuple[_Features, sparse.csr_matrix]:
        words = TfidfVectorizer(
            lowercase=False, ngram_range=(1, 2), max_features=MAX_WORD_FEATURES, sublinear_tf=True,
            dtype=np.float32,
        )  # fmt: skip
        chars = TfidfVectorizer(
            lowercase=False, analyzer="char_wb", ngram_range=(3, 4), max_features=MAX_CHAR_FEATURES,
            sublinear_tf=True, dtype=np.float32,
        )  # fmt: skip
        matrix = sparse.hstack(
            [words.fit_transform(texts), chars.fit_transform([text[:CHAR_CHARS] for text in texts])],
            format="csr",
        )
        # Every term cut by max_features, kept only for inspection: it would be most of the
        # stored model's size.
        words.stop_words_ = chars.stop_words_ = None
        return cls(words=words, chars=chars), matrix

    def transform(self, texts: list[str]) -> sparse.csr_matrix:
        return sparse.hstack(
            [self.words.transform(texts), self.chars.transform([text[:CHAR_CHARS] for text in texts])],
            format="csr",
        )


@dataclass
class TrainedMatcher:
    """One owner's trained classifiers; a field the owner labelled too rarely has none.

    ``trained_on`` counts the documents it learnt from and ``labels`` the names it knows per
    field, so the caller can tell when entries were renamed or removed since (retrain then).
    """

    features: _Features
    document_type: LogisticRegression | None
    correspondent: LogisticRegression | None
    tags: OneVsRestClassifier | None
    tag_names: tuple[str, ...]
    trained_on: int
    labels: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def suggest(
        self,
        text: str,
        *,
        threshold: float = MATCHING_CONFIDENCE_THRESHOLD,
        tag_floor: float = MATCHING_TAG_SUGGESTION_FLOOR,
    ) -> Suggestions:
        """What the classifiers propose for ``text``: per field the best label and its probability.

        Tags: each with a probability of at least ``tag_floor``, most likely first. A
        suggestion is ``confident`` from ``threshold`` on. A text with none of the learnt
        words or letter groups (empty, binary junk, another script) gets no suggestion at all.
        """
        return self.suggest_many([text], threshold=threshold, tag_floor=tag_floor)[0]

    def suggest_many(
        self,
        texts: Sequence[str],
        *,
        threshold: float = MATCHING_CONFIDENCE_THRESHOLD,
        tag_floor: float = MATCHING_TAG_SUGGESTION_FLOOR,
    ) -> list[Suggestions]:
        """``suggest`` for several texts at once (one matrix product instead of many)."""
        if not texts:
            return []
        matrix = self.features.transform([matching_text(text) for text in texts])
        known = np.diff(matrix.indptr) > 0
        types = _best(self.document_type, matrix, threshold)
        correspondents = _best(self.correspondent, matrix, threshold)
        tags = self._tags(matrix, threshold, tag_floor)
        return [
            Suggestions(document_type=types[row], correspondent=correspondents[row], tags=tags[row])
            if known[row]
            else Suggestions()
            for row in range(len(texts))
        ]

    def _tags(
        self, matrix: sparse.csr_matrix, threshold: float, floor: float
    ) -> list[tuple[Suggestion, ...]]:
        if self.tags is None:
            return [()] * matrix.shape[0]
        probabilities = self.tags.predict_proba(matrix)
        rows = []
        for row in probabilities:
            order = np.argsort(-row, kind="stable")
            rows.append(
                tuple(
                    Suggestion(self.tag_names[i], float(row[i]), confident=bool(row[i] >= threshold))
                    for i in order
                    if row[i] >= floor
                )
            )
        return rows


def _best(
    model: LogisticRegression | None, matrix: sparse.csr_matrix, threshold: float
) -> list[Suggestion | None]:
    if model is None:
        return [None] * matrix.shape[0]
    probabilities = model.predict_proba(matrix)
    best = probabilities.argmax(axis=1)
    return [
        Suggestion(str(model.classes_[i]), float(row[i]), confident=bool(row[i] >= threshold))
        for row, i in zip(probabilities, best, strict=True)
    ]


def matcher_train(
    samples: Sequence[TrainingSample],
    *,
    min_samples: int = MATCHING_MIN_DOCUMENTS,
    min_tag_documents: int = MATCHING_MIN_TAG_DOCUMENTS,
) -> TrainedMatcher | None:
    """Classifiers trained on one owner's documents; None while there is nothing to learn.

    None with fewer than ``min_samples`` documents that have text, or when no field can be
    learnt. Per field separately: type and correspondent are learnt from the documents that
    have one, when there are at least ``min_samples`` of them with at least two different
    labels; a tag is learnt when at least ``min_tag_documents`` documents carry it and at
    least one does not (every document without the tag is an example of its absence).
    """
    usable = [(matching_text(sample.text), sample) for sample in samples]
    usable = [(text, sample) for text, sample in usable if text]
    if len(usable) < max(min_samples, 2):
        return None
    texts = [text for text, _ in usable]
    features, matrix = _Features.fit(texts)
    labels: dict[str, tuple[str, ...]] = {}

    def single(name: str) -> LogisticRegression | None:
        rows = [i for i, (_, sample) in enumerate(usable) if getattr(sample, name)]
        targets = [str(getattr(usable[i][1], name)) for i in rows]
        if len(rows) < max(min_samples, 2) or len(set(targets)) < 2:
            return None
        model = LogisticRegression(C=_C, max_iter=1000, random_state=RANDOM_STATE)
        with _quiet_fit():
            model.fit(matrix[rows], targets)
        labels[name] = tuple(str(label) for label in model.classes_)
        return model

    document_type = single("document_type")
    correspondent = single("correspondent")
    tag_model, tag_names = _train_tags(matrix, [sample.tags for _, sample in usable], min_tag_documents)
    if tag_names:
        labels["tags"] = tag_names
    if document_type is None and correspondent is None and tag_model is None:
        return None
    return TrainedMatcher(
        features=features,
        document_type=document_type,
        correspondent=correspondent,
        tags=tag_model,
        tag_names=tag_names,
        trained_on=len(usable),
        labels=labels,
    )


@contextmanager
def _quiet_fit() -> Iterator[None]:
    # sklearn warns when most labels are seen once ("could represent a regression problem"):
    # a new owner's correspondents are exactly that, and the probabilities say how sure it is.
    # It would also warn (ConvergenceWarning) where max_iter cuts a fit short, which the
    # bench's accuracy would show; neither is for the worker's log.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _train_tags(
    matrix: sparse.csr_matrix, tag_sets: list[tuple[str, ...]], min_documents: int
) -> tuple[OneVsRestClassifier | None, tuple[str, ...]]:
    counts = Counter(tag for tags in tag_sets for tag in set(tags))
    # A tag on every document teaches nothing: there is no example of a document without it.
    names = tuple(
        sorted(tag for tag, count in counts.items() if max(min_documents, 1) <= count < len(tag_sets))
    )
    if not names:
        return None, ()
    targets = np.array([[name in tags for name in names] for tags in tag_sets], dtype=np.int8)
    # lbfgs, not liblinear: as exact here, and about four times faster on thousands of documents.
    base: Any = LogisticRegression(C=_C, max_iter=1000, random_state=RANDOM_STATE)
    model = OneVsRestClassifier(base)
    with _quiet_fit():
        model.fit(matrix, targets)
    return model, names
