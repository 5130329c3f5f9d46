"""The one visibility rule, per persona: whose documents each may see, and as what value."""

from __future__ import annotations

import pytest

from accounts.access import Viewer
from documents.models import Document
from documents.tests.factories import DocumentFactory
from documents.visibility import Visibility, visibility_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def multi_user(settings):
    settings.AUTH_ENABLED = True
    settings.MULTI_USER_ENABLED = True


@pytest.fixture
def archive(owner, other_user):
    return {
        "mine": DocumentFactory.create(owner=owner),
        "theirs": DocumentFactory.create(owner=other_user),
    }


def visible(viewer: Viewer) -> set[int]:
    return set(Document.objects.visible_to(viewer).values_list("pk", flat=True))


def test_with_several_users_a_user_sees_only_their_own_documents(multi_user, owner, archive):
    assert visibility_for(Viewer(owner)) == Visibility.only_owners([owner.pk])
    assert visible(Viewer(owner)) == {archive["mine"].pk}


def test_operator_rights_see_every_users_documents(multi_user, operator, archive):
    assert visibility_for(Viewer(operator, operator=True)) == Visibility.everything()
    assert visible(Viewer(operator, operator=True)) == {archive["mine"].pk, archive["theirs"].pk}


def test_an_operators_credential_without_operator_rights_sees_only_their_own(multi_user, operator, archive):
    assert visibility_for(Viewer(operator)) == Visibility.only_owners([operator.pk])
    assert visible(Viewer(operator)) == set()


def test_an_anonymous_visitor_sees_nothing(multi_user, anonymous, archive):
    assert visibility_for(Viewer(anonymous)).is_nothing
    assert visible(Viewer(anonymous)) == set()


def test_one_shared_archive_shows_every_user_everything(settings, owner, archive):
    settings.AUTH_ENABLED = True
    settings.MULTI_USER_ENABLED = False
    assert visibility_for(Viewer(owner)) == Visibility.everything()
    assert visible(Viewer(owner)) == {archive["mine"].pk, archive["theirs"].pk}


def test_without_authentication_even_an_anonymous_request_sees_everything(settings, anonymous, archive):
    settings.AUTH_ENABLED = False
    assert visibility_for(Viewer(anonymous)) == Visibility.everything()
    assert visible(Viewer(anonymous)) == {archive["mine"].pk, archive["theirs"].pk}


def test_a_visibility_is_either_every_owner_or_a_list_of_owners():
    assert not Visibility.everything().is_nothing
    assert not Visibility.only_owners([7]).is_nothing
    assert Visibility.nothing() == Visibility.only_owners([])
    with pytest.raises(ValueError, match="lists no owners"):
        Visibility(all_owners=True, owner_ids=frozenset({7}))
