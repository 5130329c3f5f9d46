from __future__ import annotations

import pytest
from rest_framework.test import APIRequestFactory, force_authenticate
from rest_framework.views import APIView

from accounts.permissions import IsOperator, IsSessionAuthenticated
from accounts.services import token_create

# The project's routes plus /api/test-operator-only, guarded by IsOperator.
pytestmark = pytest.mark.urls("accounts.tests.urls")
OPERATOR_ONLY = "/api/test-operator-only"


def test_anonymous_callers_are_asked_to_authenticate(db, api_client):
    response = api_client.get(OPERATOR_ONLY)
    assert response.status_code == 401
    assert response.json() == {"detail": "Authentication credentials were not provided."}


@pytest.mark.parametrize(
    ("persona", "allowed"), [("owner", False), ("other_user", False), ("operator", True)]
)
def test_with_a_session_only_staff_may_use_operator_routes(request, session_client, persona, allowed):
    response = session_client(request.getfixturevalue(persona)).get(OPERATOR_ONLY)
    assert response.status_code == (200 if allowed else 403)


@pytest.mark.parametrize("persona", ["owner", "other_user", "operator"])
def test_an_ordinary_token_never_opens_operator_routes(request, token_client, persona):
    response = token_client(request.getfixturevalue(persona)).get(OPERATOR_ONLY)
    assert response.status_code == 403
    assert "operator" in response.json()["detail"]


def test_an_operators_token_with_operator_scope_opens_operator_routes(operator, token_client):
    assert token_client(operator, operator_scope=True).get(OPERATOR_ONLY).status_code == 200


def test_an_operator_scoped_token_stops_working_for_staff_routes_when_its_owner_leaves_the_staff(
    operator, token_client
):
    client = token_client(operator, operator_scope=True)
    operator.is_staff = False
    operator.save()
    response = client.get(OPERATOR_ONLY)
    assert response.status_code == 403


# The permission classes on their own, as other apps' views will use them.

factory = APIRequestFactory()


def permitted(permission: IsOperator | IsSessionAuthenticated, user, auth=None) -> bool:
    django_request = factory.get("/api/anything")
    force_authenticate(django_request, user=user, token=auth)

    class Probe(APIView):
        pass

    view = Probe()
    request = view.initialize_request(django_request)
    view.request = request
    return permission.has_permission(request, view)


@pytest.mark.parametrize(("persona", "allowed"), [("anonymous", False), ("owner", False), ("operator", True)])
def test_is_operator_without_a_token_depends_on_staff_status(request, persona, allowed):
    assert permitted(IsOperator(), request.getfixturevalue(persona)) is allowed


@pytest.mark.parametrize(("scope", "allowed"), [(False, False), (True, True)])
def test_is_operator_with_an_operators_token_depends_on_its_scope(operator, scope, allowed):
    token, _ = token_create(user=operator, name="ops", operator_scope=scope)
    assert permitted(IsOperator(), operator, auth=token) is allowed


def test_is_operator_refuses_credentials_it_does_not_know(operator):
    assert permitted(IsOperator(), operator, auth={"kind": "some future credential"}) is False


def test_is_operator_refuses_an_inactive_operator(operator):
    operator.is_active = False
    assert permitted(IsOperator(), operator) is False


@pytest.mark.parametrize(("persona", "allowed"), [("anonymous", False), ("owner", True), ("operator", True)])
def test_is_session_authenticated_needs_a_signed_in_user(request, persona, allowed):
    assert permitted(IsSessionAuthenticated(), request.getfixturevalue(persona)) is allowed


def test_is_session_authenticated_refuses_a_token(owner):
    token, _ = token_create(user=owner, name="laptop")
    assert permitted(IsSessionAuthenticated(), owner, auth=token) is False
