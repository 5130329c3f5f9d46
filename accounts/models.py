"""The custom user model, in place from the first migration so it can grow safely."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser


class User(AbstractUser):
    """A person or an operator (``is_staff``) of this DocuElevate installation."""

    class Meta:
        db_table = "accounts_user"
