import uuid

from django.contrib import admin, messages

from sending.api_keys import api_keys_revoke
from sending.models import (
    ApiKey,
    Notification,
    ProviderDetails,
    ProviderDetailsHistory,
    SendAttempt,
    Service,
)
from sending.providers import provider_update


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class SendAttemptInline(admin.TabularInline):
    model = SendAttempt
    fields = ("started_at", "provider", "outcome", "duration_ms", "status_code", "error")
    readonly_fields = fields
    extra = 0
    can_delete = False
    max_num = 0


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    inlines = [SendAttemptInline]
    list_display = (
        "id",
        "service",
        "notification_type",
        "status",
        "sent_by",
        "created_at",
        "sent_at",
    )
    list_filter = ("status", "notification_type", "sent_by", "created_at")
    date_hierarchy = "created_at"
    search_fields = ("client_reference", "provider_reference")
    list_select_related = ("service",)
    show_full_result_count = False

    def get_search_results(self, request, queryset, search_term):
        try:
            return queryset.filter(id=uuid.UUID(search_term.strip())), False
        except ValueError:
            return super().get_search_results(request, queryset, search_term)


@admin.register(SendAttempt)
class SendAttemptAdmin(ReadOnlyAdmin):
    """Every hand-over to a provider: filter by provider and outcome for its recent error rate."""

    list_display = (
        "started_at",
        "provider",
        "outcome",
        "duration_ms",
        "status_code",
        "notification",
    )
    list_filter = ("provider", "outcome", "started_at")
    date_hierarchy = "started_at"
    show_full_result_count = False
    raw_id_fields = ("notification",)


class ApiKeyInline(admin.TabularInline):
    model = ApiKey
    fields = ("prefix", "created_at", "revoked_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin):
    list_display = ("name", "id", "created_at")
    search_fields = ("name",)
    inlines = [ApiKeyInline]


@admin.register(ApiKey)
class ApiKeyAdmin(ReadOnlyAdmin):
    list_display = ("prefix", "service", "created_at", "revoked_at")
    list_filter = ("revoked_at",)
    actions = ["revoke"]

    @admin.action(description="Revoke selected API keys")
    def revoke(self, request, queryset):
        count = api_keys_revoke(keys=queryset)
        self.message_user(request, f"Revoked {count} API key(s).", messages.SUCCESS)

    def has_change_permission(self, request, obj=None):
        return request.user.has_perm("sending.change_apikey")


class ProviderHistoryInline(admin.TabularInline):
    model = ProviderDetailsHistory
    fields = ("created_at", "priority", "active", "changed_by", "reason")
    readonly_fields = fields
    extra = 0
    can_delete = False
    max_num = 0


@admin.register(ProviderDetails)
class ProviderDetailsAdmin(admin.ModelAdmin):
    list_display = ("display_name", "notification_type", "priority", "active", "updated_at")
    list_editable = ("priority", "active")
    fields = (
        "name",
        "display_name",
        "notification_type",
        "priority",
        "active",
        "supports_international",
    )
    readonly_fields = ("name", "display_name", "notification_type", "supports_international")
    inlines = [ProviderHistoryInline]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        if not form.changed_data:
            return
        provider_update(
            provider=obj,
            priority=obj.priority,
            active=obj.active,
            changed_by=f"admin:{request.user.get_username()}",
            reason="changed in the admin",
        )
