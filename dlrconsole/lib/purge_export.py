"""Rows about to be purged, written first as gzip JSON lines (one file per table and run), so an
operator who asked for it keeps what retention deletes (DLR_RETENTION_EXPORT_DIR)."""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder


class PurgeExport:
    """One run's export: `write` appends a batch to the table's file before the batch is
    deleted. Each batch is its own gzip member, flushed and synced before `write` returns: a
    run killed between the write and the delete exports those rows again on its next run, but
    never deletes a row it did not export."""

    def __init__(self, directory: str | Path, *, started: datetime) -> None:
        self.directory = Path(directory)
        self.stamp = started.strftime("%Y%m%dT%H%M%SZ")
        self.files: dict[str, Path] = {}

    def path(self, table: str) -> Path:
        return self.directory / f"{self.stamp}-{table}.jsonl.gz"

    def write(self, table: str, rows: Iterable[dict[str, Any]]) -> int:
        lines = [json.dumps(row, cls=DjangoJSONEncoder, ensure_ascii=False) + "\n" for row in rows]
        if not lines:
            return 0
        path = self.path(table)
        with path.open("ab") as raw, gzip.GzipFile(fileobj=raw, mode="wb") as member:
            member.write("".join(lines).encode())
        with path.open("rb") as written:
            os.fsync(written.fileno())
        self.files[table] = path
        return len(lines)


def read_export(path: str | Path) -> list[dict[str, Any]]:
    """Every row of an export file (all its members), for a restore or a check."""
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]
