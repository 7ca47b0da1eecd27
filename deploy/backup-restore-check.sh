#!/usr/bin/env bash
# Checks the backup and restore of docs/OPERATIONS.md with its exact commands: dumps a database,
# restores the dump into a new database, and compares every table's row count (exact COUNT(*)).
# On loopback only; the restored database is dropped at the end unless KEEP_RESTORED=1.
#
#   deploy/backup-restore-check.sh postgres://postgres@127.0.0.1:5432/dlrconsole
#
set -euo pipefail

SOURCE_URL="${1:?usage: $0 postgres://user@127.0.0.1:5432/dbname}"
case "$SOURCE_URL" in
  postgres://*@127.0.0.1[:/]*|postgres://*@localhost[:/]*|postgresql://*@127.0.0.1[:/]*|postgresql://*@localhost[:/]*) ;;
  *) echo "refusing: the check runs on loopback only (127.0.0.1 or localhost)" >&2; exit 2 ;;
esac
SERVER_URL="${SOURCE_URL%/*}"
RESTORED="dlr_restore_check_$(date -u +%Y%m%d%H%M%S)"
WORK="$(mktemp -d)"
DUMP="$WORK/dlrconsole-$(date -u +%Y%m%dT%H%M%SZ).dump"

cleanup() {
  rm -rf "$WORK"
  if [ "${KEEP_RESTORED:-0}" != 1 ]; then
    psql "$SERVER_URL/postgres" -q -c "DROP DATABASE IF EXISTS $RESTORED" >/dev/null
  fi
}
trap cleanup EXIT

counts() {
  # Every table of the public schema with its exact row count, one "table count" a line.
  psql "$1" -At -c "SELECT table_name FROM information_schema.tables
                    WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name" |
  while read -r table; do
    printf '%s %s\n' "$table" "$(psql "$1" -At -c "SELECT count(*) FROM \"$table\"")"
  done
}

echo "== backup (docs/OPERATIONS.md, 'Back up')"
started=$(date +%s%N)
pg_dump --format=custom --no-owner --no-privileges --file="$DUMP" "$SOURCE_URL"
echo "dump: $(du -h "$DUMP" | cut -f1) in $(( ($(date +%s%N) - started) / 1000000 )) ms"

echo "== restore into a new database ($RESTORED)"
started=$(date +%s%N)
createdb --maintenance-db="$SERVER_URL/postgres" "$RESTORED"
pg_restore --dbname="$SERVER_URL/$RESTORED" --no-owner --no-privileges --exit-on-error --jobs=2 "$DUMP"
echo "restore: $(( ($(date +%s%N) - started) / 1000000 )) ms"

echo "== row counts, source against restored"
counts "$SOURCE_URL" > "$WORK/source.txt"
counts "$SERVER_URL/$RESTORED" > "$WORK/restored.txt"
tables=$(wc -l < "$WORK/source.txt")
rows=$(awk '{s += $2} END {print s}' "$WORK/source.txt")
awk '$2 > 0' "$WORK/source.txt" | column -t
if diff -u "$WORK/source.txt" "$WORK/restored.txt"; then
  echo "OK: $tables tables, $rows rows, every count equal"
else
  echo "MISMATCH: see the diff above" >&2
  exit 1
fi
