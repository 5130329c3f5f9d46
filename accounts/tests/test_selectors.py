from __future__ import annotations

import pytest

from accounts.selectors import token_list_for_user, user_display_name, user_profile
from accounts.services import token_create
from accounts.tests.factories import UserFactory


@pytest.mark.parametrize("persona", ["owner", "other_user", "operator"])
def test_the_token_list_holds_only_the_users_own_tokens_newest_first(request, persona, owner, other_user):
    user = request.getfixturevalue(persona)
    for someone in (owner, other_user):
        token_create(user=someone, name=f"{someone.username} first")
        token_create(user=someone, name=f"{someone.username} second")
    names = [token.name for token in token_list_for_user(user=user)]
    expected = {
        "owner": ["owner second", "owner first"],
        "other_user": ["other_user second", "other_user first"],
    }
    assert names == expected.get(persona, [])


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"display_name": "Dr. Ada", "first_name": "Ada", "last_name": "Lovelace"}, "Dr. Ada"),
        ({"display_name": "  ", "first_name": "Ada", "last_name": "Lovelace"}, "Ada Lovelace"),
        ({"first_name": "Ada"}, "Ada"),
        ({}, "ada"),
    ],
)
def test_the_display_name_falls_back_to_the_full_name_then_the_username(fields, expected):
    user = UserFactory.create(username="ada", **fields)
    assert user_display_name(user=user) == expected


@pytest.mark.django_db
def test_the_profile_uses_the_username_as_owner_id():
    user = UserFactory.create(
        username="ada",
        email="ada@example.org",
        avatar_url="https://example.org/ada.png",
        preferred_language="de",
    )
    profile = user_profile(user=user, is_admin=False)
    assert profile.owner_id == "ada"
    assert profile.display_name == "ada"
    assert profile.email == "ada@example.org"
    assert profile.avatar_url == "https://example.org/ada.png"
    assert profile.preferred_language == "de"
    assert profile.is_admin is False


@pytest.mark.django_db
def test_a_new_user_prefers_english():
    assert UserFactory.create().preferred_language == "en"
