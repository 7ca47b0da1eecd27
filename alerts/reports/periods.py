"""Which period a report covers: whole local days or Monday-to-Sunday weeks in its time zone,
the latest one whose sending time has come."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, date, datetime, time, timedelta


def _local_midnight(day: date, zone: zoneinfo.ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def _sent_on(day: date, hour: int, zone: zoneinfo.ZoneInfo) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=zone).astimezone(UTC)


def last_period(
    *, frequency: str, weekday: int, send_hour: int, time_zone: str, now: datetime
) -> tuple[datetime, datetime]:
    """(start, end) in UTC of the latest complete period due at `now`. Across a daylight-saving
    change a local day lasts 23 or 25 hours, and so does its report."""
    zone = zoneinfo.ZoneInfo(time_zone)
    today = now.astimezone(zone).date()
    if frequency == "weekly":
        send_day = today - timedelta(days=(today.weekday() - weekday) % 7)
        if _sent_on(send_day, send_hour, zone) > now:
            send_day -= timedelta(days=7)
        end_day = send_day - timedelta(days=send_day.weekday())  # the Monday of its week
        return _local_midnight(end_day - timedelta(days=7), zone), _local_midnight(end_day, zone)
    send_day = today if _sent_on(today, send_hour, zone) <= now else today - timedelta(days=1)
    return _local_midnight(send_day - timedelta(days=1), zone), _local_midnight(send_day, zone)
