from datetime import date, timedelta

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from sending.api.serializers import StrictSerializer
from stats.selectors import daily_statistics_list

DEFAULT_DAYS = 7
MAX_DAYS = 366
_DATE = {
    "input_formats": ["%Y-%m-%d"],
    "error_messages": {"invalid": "must be a date in the form YYYY-MM-DD"},
    "required": False,
}


class StatisticsQuerySerializer(StrictSerializer):
    start = serializers.DateField(
        help_text=f"first day; default {DEFAULT_DAYS - 1} days before end", **_DATE
    )
    end = serializers.DateField(help_text="last day, included; default today", **_DATE)

    def validate(self, attrs):
        end = attrs.get("end") or timezone.localdate()
        start = attrs.get("start") or end - min(timedelta(DEFAULT_DAYS - 1), end - date.min)
        if end < start:
            raise serializers.ValidationError({"end": "must not be before start"})
        if (end - start).days >= MAX_DAYS:
            raise serializers.ValidationError(
                {"end": f"must be less than {MAX_DAYS} days after start"}
            )
        return {"start": start, "end": end}


class StatisticsDaySerializer(serializers.Serializer):
    day = serializers.DateField()
    sms_requested = serializers.IntegerField()
    sms_delivered = serializers.IntegerField()
    sms_failed = serializers.IntegerField()
    sms_fragments = serializers.IntegerField(help_text="parts of the texts requested")
    emails_requested = serializers.IntegerField()
    emails_delivered = serializers.IntegerField()
    emails_failed = serializers.IntegerField()


class StatisticsSerializer(serializers.Serializer):
    statistics = StatisticsDaySerializer(many=True)


class StatisticsView(APIView):
    """The caller's service's daily counts (contract sections 4 and 7)."""

    @extend_schema(parameters=[StatisticsQuerySerializer], responses={200: StatisticsSerializer})
    def get(self, request):
        query = StatisticsQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        days = daily_statistics_list(service=request.user, **query.validated_data)
        return Response(StatisticsSerializer({"statistics": days}).data)
