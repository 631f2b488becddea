"""Tenants: who owns which WhatsApp number, their Twilio credentials and agent settings."""

from .crypto import TokenCipher, TokenDecryptError, generate_key
from .directory import TenantDirectory, attach_directory
from .kv import BUCKET, DirectoryPublisher, open_bucket
from .models import NewTenant, Template, TenantRecord, TenantRoute, TenantUpdate
from .repository import (
    ApiKeyInfo,
    TenantConflict,
    TenantNotFound,
    TenantRepository,
    hash_api_key,
)
from .schema import apply_migrations

__all__ = [
    "BUCKET",
    "ApiKeyInfo",
    "DirectoryPublisher",
    "NewTenant",
    "Template",
    "TenantConflict",
    "TenantDirectory",
    "TenantNotFound",
    "TenantRecord",
    "TenantRepository",
    "TenantRoute",
    "TenantUpdate",
    "TokenCipher",
    "TokenDecryptError",
    "apply_migrations",
    "attach_directory",
    "generate_key",
    "hash_api_key",
    "open_bucket",
]
