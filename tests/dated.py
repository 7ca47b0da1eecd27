"""Which test modules can mix a fixed date with the real clock: those that write a date, a Unix
time or a frozen clock themselves, read recorded payloads (fixture files carry their providers'
dates), or import a test helper that does. `make test` (and so CI) runs these a year ahead
(`--clock-shift-days=365 --clock-shift-dated`) and every other test on today's clock: a test that
computes every time from now cannot be broken by the day it runs on, and the whole suite twice
(today, then shifted) no longer fits CI's ten minutes."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

TESTS = Path(__file__).resolve().parent
FIXED_TIME = re.compile(
    r"datetime\(\s*20\d\d"  # datetime(2026, ...)
    r"|\bdate\(\s*20\d\d"
    r"|[\"']20\d\d-\d\d-\d\d"  # "2026-11-26..."
    r"|fromisoformat|fromtimestamp"
    r"|time_machine"
    r"|\b1[6-9]\d{8}\b"  # a Unix time of these years
    r"|fixture\(|fixtures/|FIXTURES"  # recorded payloads
)
TEST_IMPORT = re.compile(r"^from tests\.([\w.]+) import|^import tests\.([\w.]+)", re.MULTILINE)
# The clock shift itself.
NOT_A_DATE = {TESTS / "conftest.py", Path(__file__).resolve()}


@cache
def is_dated(path: Path) -> bool:
    """True when the module at `path`, a tests module it imports (at any depth), or its
    directory's conftest writes a fixed time."""
    seen: set[Path] = set()
    todo = [path]
    if path.name != "conftest.py" and path.parent != TESTS:
        todo.append(path.parent / "conftest.py")
    while todo:
        module = todo.pop()
        if module in seen or module in NOT_A_DATE or not module.exists():
            continue
        seen.add(module)
        source = module.read_text()
        if FIXED_TIME.search(source):
            return True
        for match in TEST_IMPORT.finditer(source):
            dotted = (match.group(1) or match.group(2)).replace(".", "/")
            todo += [TESTS / f"{dotted}.py", TESTS / dotted / "__init__.py"]
    return False
