"""The one rule for whose documents a viewer may see, as a value every reader can apply.

``Document.objects.visible_to`` turns it into a filter on the documents, and the search
backends into a filter on their index (search.backends), so a page, the API and a search
all count the same documents. Tasks and commands act as the system and read
``Document.objects``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings

if TYPE_CHECKING:
    from accounts.access import Viewer


@dataclass(frozen=True)
class Visibility:
    """Whose documents may be seen: every owner's, or only those of ``owner_ids``.

    Build it with ``everything()``, ``only_owners(...)`` or ``nothing()``. Readers filter
    by ``owner_ids`` unless ``all_owners``, and may skip a read when ``is_nothing``.
    """

    all_owners: bool
    owner_ids: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        if self.all_owners and self.owner_ids:
            raise ValueError("A visibility of every owner lists no owners.")

    @classmethod
    def everything(cls) -> Visibility:
        return cls(all_owners=True)

    @classmethod
    def only_owners(cls, owner_ids: Iterable[int]) -> Visibility:
        return cls(all_owners=False, owner_ids=frozenset(owner_ids))

    @classmethod
    def nothing(cls) -> Visibility:
        return cls(all_owners=False)

    @property
    def is_nothing(self) -> bool:
        return not self.all_owners and not self.owner_ids


def visibility_for(viewer: Viewer) -> Visibility:
    """Whose documents ``viewer`` may see.

    Operator rights see everything; they come with the request's credential (a staff
    session, or a staff user's token with operator scope: ``accounts.access``), so an
    operator's everyday or mobile token sees what any user's does. With MULTI_USER_ENABLED
    each user sees only their own documents; without it the installation is one shared
    archive for its users. Anonymous visitors see nothing unless authentication is switched
    off.
    """
    if not settings.AUTH_ENABLED:
        return Visibility.everything()
    if not viewer.user.is_authenticated:
        return Visibility.nothing()
    if viewer.operator or not settings.MULTI_USER_ENABLED:
        return Visibility.everything()
    return Visibility.only_owners([viewer.user.pk])
