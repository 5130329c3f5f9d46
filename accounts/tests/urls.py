"""The project's routes plus one operator-only API view, to test IsOperator end to end."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, include, path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsOperator


class OperatorOnlyView(APIView):
    permission_classes = [IsOperator]

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


urlpatterns: list[URLPattern | URLResolver] = [
    path("api/test-operator-only", OperatorOnlyView.as_view()),
    path("", include("docuelevate.urls")),
]
