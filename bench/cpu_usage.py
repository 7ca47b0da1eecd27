"""Where the CPU went during a benchmark run, from /proc (Linux): per component of the run and
for the whole machine, so that a run on a shared machine says how much others took.

A component is a process tree: gunicorn's master and its workers, the Celery worker and its pool,
PostgreSQL's postmaster and every backend. A tree's CPU is the sum over its live processes of
their own time plus the time of the children they reaped, so a process that exited during the
window (a PostgreSQL backend of a closed connection) still counts, in its parent. What the
machine was busy with beyond the components is "others": other people's work and the kernel.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")

Table = dict[int, tuple[int, float]]  # pid → (parent pid, CPU seconds of it and its reaped children)


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    busy = user + nice + system + irq + softirq + steal
    return busy, busy + idle + iowait


def process_table() -> Table:
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # exited meanwhile
        # The command name may hold spaces and parentheses: the fields start after the last ")".
        fields = stat[stat.rindex(")") + 2 :].split()
        # utime, stime, cutime, cstime (the last two: children waited for)
        cpu = sum(int(fields[i]) for i in (11, 12, 13, 14)) / TICKS
        table[int(entry.name)] = (int(fields[1]), cpu)
    return table


def tree(table: Table, root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    pids, frontier = set(), [root] if root in table else []
    while frontier:
        pid = frontier.pop()
        pids.add(pid)
        frontier.extend(children.get(pid, []))
    return pids


def label(pid: int) -> str:
    """A short name for a process: its command, with the module or script for an interpreter."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"
    words = [a.decode(errors="replace") for a in args if a]
    if comm.startswith("python") and len(words) > 1:
        if "-m" in words[:-1]:
            return f"python -m {words[words.index('-m') + 1]}"
        return f"python {Path(words[1]).name}"
    return comm


class CpuMeter:
    """`roots`: component → a function giving its root pid at snapshot time."""

    def __init__(self, roots: dict[str, Callable[[], int | None]]) -> None:
        self.roots = roots
        self.others_by_label: dict[str, float] = {}
        self._start: tuple[float, tuple[int, int], dict[str, float], Table] | None = None

    def _components(self, table: Table) -> tuple[dict[str, float], set[int]]:
        used, mine = {}, set()
        for name, root in self.roots.items():
            root_pid = root()
            pids = tree(table, root_pid) if root_pid is not None else set()
            used[name] = sum(table[pid][1] for pid in pids)
            mine |= pids
        mine.add(os.getpid())
        used["bench process"] = table.get(os.getpid(), (0, 0.0))[1]
        return used, mine

    def begin(self) -> None:
        table = process_table()
        self._start = (time.monotonic(), machine_jiffies(), self._components(table)[0], table)

    def end(self) -> dict[str, float]:
        """CPU seconds per component since begin(), "others", and the machine's figures."""
        assert self._start is not None
        started, (busy0, total0), before, table0 = self._start
        wall = time.monotonic() - started
        busy1, total1 = machine_jiffies()
        table = process_table()
        after, mine = self._components(table)
        used = {name: max(0.0, after[name] - before.get(name, 0.0)) for name in after}
        machine_busy = (busy1 - busy0) / TICKS
        self.others_by_label = others_by_label(table0, table, mine)
        return {
            **used,
            "others": max(0.0, machine_busy - sum(used.values())),
            "machine busy": machine_busy,
            "machine capacity": (total1 - total0) / TICKS,
            "window_s": wall,
            "cpus": os.cpu_count() or 1,
        }


def others_by_label(before: Table, after: Table, mine: set[int]) -> dict[str, float]:
    """CPU seconds of the other live processes (with their reaped children), by label, largest
    first. A hint only: work of processes that exited under another parent moves between labels."""
    used = {pid: cpu - before.get(pid, (0, 0.0))[1] for pid, (_, cpu) in after.items() if pid not in mine}
    for pid, (ppid, cpu) in before.items():
        # Reaped during the window: its parent's time now holds all of it, what it used before too.
        if pid not in after and ppid in used:
            used[ppid] -= cpu
    by_label: dict[str, float] = {}
    for pid, seconds in used.items():
        if seconds > 0.05:
            name = label(pid)
            by_label[name] = by_label.get(name, 0.0) + seconds
    return dict(sorted(by_label.items(), key=lambda item: -item[1]))


def postmaster_pid() -> int | None:
    """PostgreSQL's postmaster: the `postgres` process whose parent is not one."""
    table = process_table()
    for pid, (ppid, _) in table.items():
        if comm(pid) == "postgres" and comm(ppid) != "postgres":
            return pid
    return None


def pid_named(name: str) -> int | None:
    return next((pid for pid in process_table() if comm(pid) == name), None)


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""
