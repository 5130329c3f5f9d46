"""Shapes of the accounts API: input serializers check form only (the rules live in
``accounts.services``), output serializers render every answer the schema describes."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from accounts.models import ApiToken
from accounts.services import DEVICE_NAME_MAX_LENGTH, TOKEN_NAME_MAX_LENGTH


class ApiTokenOutputSerializer(serializers.ModelSerializer[ApiToken]):
    """A token as its owner sees it later: never the token itself, nor its hash."""

    revoked = serializers.BooleanField(source="is_revoked", read_only=True)

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "name",
            "token_prefix",
            "created_at",
            "expires_at",
            "last_used_at",
            "last_used_ip",
            "revoked",
            "operator_scope",
        ]
        read_only_fields = fields


class ApiTokenCreateInputSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=TOKEN_NAME_MAX_LENGTH)
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    operator_scope = serializers.BooleanField(required=False, default=False)


class ApiTokenCreatedOutputSerializer(serializers.Serializer[Any]):
    """The answer to a new token: the only time ``token`` is ever shown."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    token_prefix = serializers.CharField()
    token = serializers.CharField(help_text="The full token. Store it now; it cannot be shown again.")


class DeviceTokenInputSerializer(serializers.Serializer[Any]):
    device_name = serializers.CharField(max_length=DEVICE_NAME_MAX_LENGTH)


class DeviceTokenOutputSerializer(serializers.Serializer[Any]):
    token = serializers.CharField(help_text="The full token. Store it now; it cannot be shown again.")
    token_id = serializers.IntegerField()
    name = serializers.CharField()
    created_at = serializers.DateTimeField()


class ProfileOutputSerializer(serializers.Serializer[Any]):
    owner_id = serializers.CharField(help_text="The username; clients use it as the owner key.")
    display_name = serializers.CharField()
    email = serializers.CharField()
    avatar_url = serializers.CharField()
    is_admin = serializers.BooleanField(help_text="Whether these credentials may use operator routes.")
    preferred_language = serializers.CharField()
