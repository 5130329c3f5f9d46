"""A trained matcher as bytes to keep, and back: signed, versioned, checked before unpickling.

scikit-learn models can only be stored as pickles, and unpickling runs whatever the bytes
say. So a stored matcher is signed (HMAC-SHA256 under a key derived from SESSION_SECRET for
this purpose alone) and the signature is checked before a single byte is unpickled: bytes
someone changed in the database, or wrote without the secret, are refused. A blob written
under another format or another scikit-learn version is refused too (pickles of estimators
are not portable across versions); the cure in both cases is to train again, which takes
seconds.

Layout: MAGIC, the 32-byte MAC, a 2-byte header length, the JSON header (format and
scikit-learn version), the joblib payload. The MAC covers everything after itself.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json

import joblib
import sklearn

from docuelevate.encryption import purpose_keys
from documents.matching.classifier import TrainedMatcher

FORMAT_VERSION = 1
MAGIC = b"docuelevate-matcher\n"
_KEY_INFO = b"docuelevate matcher signature v1"
_MAC_BYTES = 32
_HEADER_LENGTH_BYTES = 2
# zlib level 3: the vocabularies and weights shrink to about a third, quickly.
_COMPRESS = ("zlib", 3)


class MatcherBlobRefused(Exception):
    """A stored matcher that will not be loaded; train a new one instead."""


class MatcherSignatureInvalid(MatcherBlobRefused):
    """Not signed with SESSION_SECRET (or SESSION_SECRET_PREVIOUS): changed, forged or cut short."""


class MatcherVersionMismatch(MatcherBlobRefused):
    """Signed by us, but under another storage format or scikit-learn version."""


def _header() -> bytes:
    return json.dumps({"format": FORMAT_VERSION, "sklearn": sklearn.__version__}, sort_keys=True).encode()


def _mac(key: bytes, signed: bytes) -> bytes:
    return hmac.new(key, signed, hashlib.sha256).digest()


def matcher_dumps(matcher: TrainedMatcher) -> bytes:
    """``matcher`` as bytes that ``matcher_loads`` accepts under the same secret and versions."""
    buffer = io.BytesIO()
    joblib.dump(matcher, buffer, compress=_COMPRESS)
    header = _header()
    signed = len(header).to_bytes(_HEADER_LENGTH_BYTES, "big") + header + buffer.getvalue()
    return MAGIC + _mac(purpose_keys(info=_KEY_INFO)[0], signed) + signed


def matcher_loads(blob: bytes) -> TrainedMatcher:
    """The matcher in ``blob``; MatcherSignatureInvalid or MatcherVersionMismatch, before unpickling,
    when it is not ours or not of this version."""
    prefix = len(MAGIC) + _MAC_BYTES
    if not isinstance(blob, bytes | bytearray | memoryview):
        raise MatcherSignatureInvalid("not bytes")
    blob = bytes(blob)
    if len(blob) < prefix + _HEADER_LENGTH_BYTES or not blob.startswith(MAGIC):
        raise MatcherSignatureInvalid("not a stored matcher")
    mac, signed = blob[len(MAGIC) : prefix], blob[prefix:]
    # Every key is tried (no early exit on the first), so timing tells nothing either.
    matches = [hmac.compare_digest(mac, _mac(key, signed)) for key in purpose_keys(info=_KEY_INFO)]
    if not any(matches):
        raise MatcherSignatureInvalid("signature does not match SESSION_SECRET or SESSION_SECRET_PREVIOUS")
    header_length = int.from_bytes(signed[:_HEADER_LENGTH_BYTES], "big")
    header, payload = (
        signed[_HEADER_LENGTH_BYTES : _HEADER_LENGTH_BYTES + header_length],
        signed[_HEADER_LENGTH_BYTES + header_length :],
    )
    if header != _header():
        raise MatcherVersionMismatch(
            f"stored as {header.decode(errors='replace')}, this is {_header().decode()}"
        )
    matcher = joblib.load(io.BytesIO(payload))
    if not isinstance(matcher, TrainedMatcher):
        raise MatcherBlobRefused(f"a signed {type(matcher).__name__}, not a matcher")
    return matcher
