"""Rollups: messages counted per time bucket and route, maintained by maintain.py, read by
selectors.py. No foreign keys: the upserts of a pass must not lock connections or messages."""

from __future__ import annotations

from django.db import models

from receipts.rollups.figures import COUNT_COLUMNS


class Grain(models.TextChoices):
    MINUTE = "m", "minute"
    HOUR = "h", "hour"
    DAY = "d", "day"


class Dimensions(models.Model):
    """Where a message went, as the rollups split it. Buckets start at a whole minute, hour or
    day in UTC, by the message's submission time: a message stays in its bucket whatever
    happens to it later, so the figures of a period settle as its receipts come in."""

    grain = models.CharField(max_length=1, choices=Grain.choices)
    bucket = models.DateTimeField()
    connection_id = models.BigIntegerField()
    country = models.CharField(max_length=2)
    network = models.CharField(max_length=64)
    flow = models.CharField(max_length=64)

    class Meta:
        abstract = True


class Rollup(Dimensions):
    """Messages by final status, class, time to first receipt and to delivery (histograms,
    figures.HISTOGRAM_BOUNDS), missing receipts, resends, fallbacks and cost. The count columns
    (figures.COUNT_COLUMNS) are added below, one integer each."""

    currency = models.CharField(max_length=3)
    cost = models.DecimalField(max_digits=20, decimal_places=6, default=0)

    class Meta:
        constraints = [
            # The upsert's conflict target.
            models.UniqueConstraint(
                fields=["grain", "bucket", "connection_id", "country", "network", "flow", "currency"],
                name="rollup_unique_cell",
            )
        ]
        # Pages read a window of one grain, then group; pruning deletes old buckets of a grain.
        indexes = [models.Index(fields=["grain", "bucket"], name="rollup_grain_bucket_idx")]

    def __str__(self) -> str:
        return f"{self.grain} {self.bucket:%Y-%m-%d %H:%M} {self.connection_id} {self.country}"


for _column in COUNT_COLUMNS:
    Rollup.add_to_class(_column, models.IntegerField(default=0))


class RollupReason(Dimensions):
    """Failures by reason (and the class they were given), in the same cells as Rollup."""

    reason = models.CharField(max_length=48)
    error_class = models.CharField(max_length=16)
    count = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["grain", "bucket", "connection_id", "country", "network", "flow", "reason", "error_class"],
                name="rollup_reason_unique_cell",
            )
        ]
        indexes = [models.Index(fields=["grain", "bucket"], name="rollup_reason_grain_bucket_idx")]

    def __str__(self) -> str:
        return f"{self.grain} {self.bucket:%Y-%m-%d %H:%M} {self.reason}"


class Level(models.TextChoices):
    """The coarse rollups: the same cells added up over fewer dimensions (LEVEL_DIMENSIONS)."""

    ROUTE = "r", "route"
    FLOW = "f", "flow"
    CONNECTION_FLOW = "c", "connection and flow"


# Each level's own dimensions; the others of COARSE_DIMENSIONS hold their BLANK value.
COARSE_DIMENSIONS: tuple[str, ...] = ("connection_id", "country", "flow")
LEVEL_DIMENSIONS: dict[str, tuple[str, ...]] = {
    Level.ROUTE: ("connection_id", "country"),
    Level.FLOW: ("flow",),
    # A flow on one connection: the Flows page narrowed to a connection, alert rules such as
    # "OTP on this connection".
    Level.CONNECTION_FLOW: ("connection_id", "flow"),
}
BLANK: dict[str, object] = {"connection_id": 0, "country": "", "flow": ""}


class CoarseDimensions(models.Model):
    """Where messages went, at a coarse level: the level's own dimensions are set, the others hold
    0 or "" and mean "all of them" (a level's rows are never read without their level)."""

    grain = models.CharField(max_length=1, choices=Grain.choices)
    level = models.CharField(max_length=1, choices=Level.choices)
    bucket = models.DateTimeField()
    connection_id = models.BigIntegerField()
    country = models.CharField(max_length=2)
    flow = models.CharField(max_length=64)

    class Meta:
        abstract = True


class CoarseRollup(CoarseDimensions):
    """Rollup rows added up per level: connection x country (routes), flow alone, or connection x
    flow. The dashboards' and alert rules' usual questions read these, a twentieth of the fine
    rows at the hour; a question about a network, or a flow in a country, reads the fine rows. Kept by the same
    passes in the same transaction, so they always equal the sums of the fine rows."""

    currency = models.CharField(max_length=3)
    cost = models.DecimalField(max_digits=20, decimal_places=6, default=0)

    class Meta:
        constraints = [
            # The upsert's conflict target; its leading columns serve a window's range read.
            models.UniqueConstraint(
                fields=["grain", "level", "bucket", "connection_id", "country", "flow", "currency"],
                name="coarse_rollup_unique_cell",
            )
        ]

    def __str__(self) -> str:
        return f"{self.grain}{self.level} {self.bucket:%Y-%m-%d %H:%M} {self.connection_id} {self.country} {self.flow}"


for _column in COUNT_COLUMNS:
    CoarseRollup.add_to_class(_column, models.IntegerField(default=0))


class CoarseRollupReason(CoarseDimensions):
    """RollupReason rows added up per level, as CoarseRollup."""

    reason = models.CharField(max_length=48)
    error_class = models.CharField(max_length=16)
    count = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["grain", "level", "bucket", "connection_id", "country", "flow", "reason", "error_class"],
                name="coarse_reason_unique_cell",
            )
        ]

    def __str__(self) -> str:
        return f"{self.grain}{self.level} {self.bucket:%Y-%m-%d %H:%M} {self.reason}"


class Snapshot(models.Model):
    """What a message contributes to the rollups now (figures.Contribution), so the next change
    can take it back out exactly."""

    message_id = models.BigIntegerField(primary_key=True)
    minute = models.DateTimeField()
    connection_id = models.BigIntegerField()
    country = models.CharField(max_length=2)
    network = models.CharField(max_length=64)
    flow = models.CharField(max_length=64)
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=16)
    error_class = models.CharField(max_length=16)
    reason = models.CharField(max_length=48)
    ttfr_bucket = models.SmallIntegerField(null=True)
    ttd_bucket = models.SmallIntegerField(null=True)
    missing = models.BooleanField()
    resend = models.BooleanField()
    fallbacks = models.SmallIntegerField()
    cost = models.DecimalField(max_digits=12, decimal_places=6, null=True)

    def __str__(self) -> str:
        return f"snapshot {self.message_id}"
