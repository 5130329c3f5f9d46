"""Forms of the account pages: they check shapes; accounts.services makes the decisions."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from django import forms
from django.utils import timezone

from accounts.models import User
from accounts.services import TOKEN_NAME_MAX_LENGTH


class TokenCreateForm(forms.Form):
    name = forms.CharField(
        label="Name",
        max_length=TOKEN_NAME_MAX_LENGTH,
        help_text="Where the token is used, e.g. “laptop CLI” or “scanner script”.",
    )
    expires_on = forms.DateField(
        label="Expires on (optional)",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="The token stops working at the end of this day. Leave empty to keep it until revoked.",
    )
    operator_scope = forms.BooleanField(
        label="Operator scope (lets the token reach operator routes)", required=False
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Only operators may mint operator tokens; everyone else never sees the choice.
        if not user.is_staff:
            del self.fields["operator_scope"]

    def expires_at(self) -> datetime | None:
        """The end of the chosen day in the site's time zone: what a person means by "on"."""
        day: date | None = self.cleaned_data.get("expires_on")
        if day is None:
            return None
        return timezone.make_aware(datetime.combine(day + timedelta(days=1), time.min))
