"""GET /api/v1/rollups/: the dashboards' figures for BI tools, per group, with the previous
period and optionally the trend, read from the rollups (receipts/rollups/selectors.py).

A period is a console window or a from/to range of at most 400 days, widened to whole buckets
of its grain (minute, hour or day, UTC) and answered with the bounds actually used. A grain is
served only as far back as it is kept (minutes 48 h, hours 90 days by default; days for ever).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from dlrconsole import roles
from dlrconsole.api.fields import SLUG_PATTERN, InstantField, SlugReferenceField, StrictCharField
from dlrconsole.api.params import RefusesEmptyParameters
from dlrconsole.api.permissions import ActionPermissions
from dlrconsole.api.schema import ApiSchema
from receipts.models import Connection
from receipts.rollups.models import Grain, Rollup
from receipts.rollups.selectors import (
    GROUP_COLUMNS,
    STEPS,
    WINDOWS,
    Figures,
    Period,
    Point,
    Scope,
    period_between,
    rollup_figures,
    rollup_series,
    window_period,
)

MAX_RANGE = timedelta(days=400)
# A series longer than this is refused: ask for a coarser grain instead (a day in minutes is 1,440).
MAX_SERIES_BUCKETS = 2000
GRAINS = {"minute": Grain.MINUTE, "hour": Grain.HOUR, "day": Grain.DAY}


def retention(grain: str) -> timedelta | None:
    if grain == Grain.MINUTE:
        return timedelta(hours=settings.DLR_ROLLUP_MINUTES_KEEP_HOURS)
    if grain == Grain.HOUR:
        return timedelta(days=settings.DLR_ROLLUP_HOURS_KEEP_DAYS)
    return None


def finest_grain(start: Any, end: Any, now: Any) -> str:
    """The finest grain still kept at `start` that gives at most MAX_SERIES_BUCKETS buckets."""
    for grain in (Grain.MINUTE, Grain.HOUR):
        kept = retention(grain)
        if kept is not None and start >= now - kept and (end - start) / STEPS[grain] <= MAX_SERIES_BUCKETS:
            return grain
    return Grain.DAY


class RollupQuerySerializer(serializers.Serializer):
    window = serializers.ChoiceField(
        choices=list(WINDOWS), required=False, help_text="A console window, ending with the current bucket; "
        "24h when neither it nor from/to is given. Not with from/to."
    )  # fmt: skip
    # `from` is a Python keyword: the field is declared below under its query name.
    to = InstantField(required=False, help_text="End of the range (exclusive), widened to a bucket end.")
    grain = serializers.ChoiceField(
        choices=list(GRAINS), required=False, help_text="Bucket size with from/to; by default the finest still "
        "kept that gives at most 2000 buckets. A window has its own (1h: minute, 24h and 7d: hour, 30d: day)."
    )  # fmt: skip
    group_by = serializers.MultipleChoiceField(
        choices=list(GROUP_COLUMNS), required=False,
        help_text="Repeat to group by several; each group names its values in the order connection, country, "
        "network, flow.",
    )  # fmt: skip
    connection = SlugReferenceField(slug_field="slug", queryset=Connection.objects.all(), required=False)
    country = StrictCharField(
        min_length=2, max_length=2, required=False, pattern=r"^[A-Za-z]{2}$",
        refusal="must be a two-letter ISO 3166 code, e.g. FR",
    )  # fmt: skip
    network = StrictCharField(max_length=64, required=False)
    flow = StrictCharField(
        max_length=64, required=False, pattern=SLUG_PATTERN, refusal="a slug: letters, digits, - and _"
    )
    series = serializers.BooleanField(required=False, default=False, help_text="Include each group's trend.")

    def get_fields(self) -> dict[str, serializers.Field]:
        fields: dict[str, serializers.Field] = super().get_fields()
        fields["from"] = InstantField(required=False, help_text="Start of the range, widened to a bucket start.")
        return fields

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start, end, window = attrs.get("from"), attrs.get("to"), attrs.get("window")
        now = timezone.now()
        if window and (start or end):
            raise ValidationError({"window": ["give either a window or from and to, not both"]})
        if window or not (start or end):
            if "grain" in attrs:
                raise ValidationError({"grain": ["a window has its own grain: give from and to to choose one"]})
            attrs["period"] = window_period(window or "24h", now=now)
        else:
            attrs["period"] = self._range(start, end, attrs.get("grain"), now)
        if attrs["series"] and len(attrs["period"].buckets()) > MAX_SERIES_BUCKETS:
            raise ValidationError(
                {"grain": [f"a series of more than {MAX_SERIES_BUCKETS} buckets: choose a coarser grain"]}
            )
        attrs["group_by"] = [name for name in GROUP_COLUMNS if name in attrs.get("group_by", ())]
        return attrs

    def _range(self, start: Any, end: Any, grain_name: str | None, now: Any) -> Period:
        if start is None or end is None:
            raise ValidationError({"from" if start is None else "to": ["from and to go together"]})
        if end <= start:
            raise ValidationError({"to": ["must be later than from"]})
        if end - start > MAX_RANGE:
            raise ValidationError({"to": ["the range may not exceed 400 days"]})
        grain = GRAINS[grain_name] if grain_name else finest_grain(start, end, now)
        kept = retention(grain)
        if kept is not None and start < now - kept:
            hint = "hour" if grain == Grain.MINUTE else "day"
            raise ValidationError(
                {"grain": [f"{Grain(grain).label} buckets are kept for {kept}; use grain={hint} for older figures"]}
            )
        return period_between(start, end, grain)

    def scope(self) -> Scope:
        data = self.validated_data
        return Scope(
            connection_id=data["connection"].pk if data.get("connection") else None,
            country=data["country"].upper() if data.get("country") else None,
            network=data.get("network"),
            flow=data.get("flow"),
        )


class PeriodSerializer(serializers.Serializer):
    start = serializers.DateTimeField(source="since")
    end = serializers.DateTimeField(source="until", help_text="Exclusive.")
    grain = serializers.SerializerMethodField()

    def get_grain(self, period: Period) -> str:
        return str(Grain(period.grain).label)


class PercentilesSerializer(serializers.Serializer):
    p50 = serializers.FloatField(allow_null=True, help_text="Seconds, from a histogram (within a bucket's width).")
    p95 = serializers.FloatField(allow_null=True)


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField()
    error_class = serializers.CharField()
    messages = serializers.IntegerField()


class CostSerializer(serializers.Serializer):
    currency = serializers.CharField()
    total = serializers.DecimalField(max_digits=20, decimal_places=6)
    per_delivered = serializers.DecimalField(max_digits=20, decimal_places=6, allow_null=True)


class FiguresSerializer(serializers.Serializer):
    messages = serializers.IntegerField()
    delivered = serializers.IntegerField()
    failed = serializers.IntegerField()
    pending = serializers.IntegerField(help_text="Without a final status yet.")
    delivery_rate = serializers.FloatField(allow_null=True, help_text="Delivered among final; null with none final.")
    missing = serializers.IntegerField(help_text="Past their receipt time limit without a final status.")
    missing_rate = serializers.FloatField(allow_null=True)
    resends = serializers.IntegerField()
    fallbacks = serializers.IntegerField()
    statuses = serializers.DictField(child=serializers.IntegerField())
    time_to_delivery = PercentilesSerializer()
    time_to_first_receipt = PercentilesSerializer()
    failures_by_reason = ReasonSerializer(many=True)
    cost = CostSerializer(many=True, help_text="Per currency, never converted.")


class PointSerializer(serializers.Serializer):
    bucket = serializers.DateTimeField()
    messages = serializers.IntegerField()
    delivered = serializers.IntegerField()
    failed = serializers.IntegerField()
    delivery_rate = serializers.FloatField(allow_null=True)


class GroupSerializer(serializers.Serializer):
    group = serializers.DictField(child=serializers.CharField(), help_text="The group's values; connection by slug.")
    figures = FiguresSerializer()
    previous = FiguresSerializer(help_text="The same figures in the previous period.")
    series = PointSerializer(many=True, required=False)


class RollupAnswerSerializer(serializers.Serializer):
    period = PeriodSerializer()
    previous_period = PeriodSerializer()
    groups = GroupSerializer(many=True)


def figures_data(figures: Figures) -> dict[str, Any]:
    per_delivered = figures.cost_per_delivered()
    return {
        "messages": figures.messages,
        "delivered": figures.delivered,
        "failed": figures.failed,
        "pending": figures.pending,
        "delivery_rate": figures.delivery_rate,
        "missing": figures.missing,
        "missing_rate": figures.missing_rate,
        "resends": figures.resends,
        "fallbacks": figures.fallbacks,
        "statuses": figures.statuses(),
        "time_to_delivery": {"p50": figures.ttd_p50, "p95": figures.ttd_p95},
        "time_to_first_receipt": {"p50": figures.ttfr_p50, "p95": figures.ttfr_p95},
        "failures_by_reason": [vars(reason) for reason in figures.reasons],
        "cost": [
            {"currency": currency, "total": total, "per_delivered": per_delivered[currency]}
            for currency, total in sorted(figures.costs.items())
        ],
    }


def point_data(point: Point) -> dict[str, Any]:
    return {
        "bucket": point.bucket,
        "messages": point.messages,
        "delivered": point.delivered,
        "failed": point.failed,
        "delivery_rate": point.delivery_rate,
    }


def rollup_answer(*, period: Period, scope: Scope, group_by: list[str], series: bool) -> dict[str, Any]:
    current = rollup_figures(period=period, scope=scope, group_by=group_by)
    previous = {
        tuple(f.group.values()): f for f in rollup_figures(period=period.previous, scope=scope, group_by=group_by)
    }
    trends = rollup_series(period=period, scope=scope, group_by=group_by) if series else {}
    ids = {f.group["connection"] for f in current if "connection" in f.group}
    slugs = dict(Connection.objects.filter(pk__in=ids).values_list("pk", "slug")) if ids else {}
    groups = []
    for figures in current:
        key = tuple(figures.group.values())
        named = {name: slugs.get(value, "") if name == "connection" else value for name, value in figures.group.items()}
        group: dict[str, Any] = {
            "group": named,
            "figures": figures_data(figures),
            "previous": figures_data(previous.get(key) or Figures(group=figures.group)),
        }
        if series:
            empty = [Point(bucket, 0, 0, 0) for bucket in period.buckets()]
            group["series"] = [point_data(point) for point in trends.get(key, empty)]
        groups.append(group)
    return {"period": period, "previous_period": period.previous, "groups": groups}


class RollupView(RefusesEmptyParameters, GenericAPIView):
    """The dashboards' figures for BI tools: whoever may use the console (people and their API keys)."""

    schema = ApiSchema()
    permission_classes = [ActionPermissions]
    # One answer, not a list of records: named apart from `list`, which the schema would describe
    # as an array.
    action = "read"
    action_permissions = {"read": (roles.USE_CONSOLE,)}
    queryset = Rollup.objects.none()  # for the schema generator only: the figures come from the selectors

    @extend_schema(
        parameters=[RollupQuerySerializer],
        responses={200: RollupAnswerSerializer},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        query = RollupQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        answer = rollup_answer(
            period=data["period"], scope=query.scope(), group_by=data["group_by"], series=data["series"]
        )
        return Response(RollupAnswerSerializer(answer).data)
