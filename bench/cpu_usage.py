"""Where the CPU went during a benchmark run, from /proc (Linux): per component of the run and
for the whole machine, so that a run on a shared machine says how much others took.

A component is a process tree (gunicorn's master and its workers, the Celery worker and its
pool), a set of pids (the PostgreSQL backends serving the bench database) or this process.
Whatever the machine was busy with beyond the components is "others": other people's tests,
the kernel, and the components' processes that exited during the window (none, normally).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    busy = user + nice + system + irq + softirq + steal
    return busy, busy + idle + iowait


def process_table() -> dict[int, tuple[int, float]]:
    """pid → (parent pid, CPU seconds used so far)."""
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
        table[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS)
    return table


def tree(table: dict[int, tuple[int, float]], root: int) -> set[int]:
    pids, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, (ppid, _) in table.items() if ppid == parent and pid not in pids]
        pids.update(children)
        frontier.extend(children)
    return pids & table.keys()


class CpuMeter:
    """`roots`: component → root pid (its whole tree counts); `pid_sets`: component → a function
    giving its pids now (called at each snapshot)."""

    def __init__(self, roots: dict[str, int], pid_sets: dict[str, Callable[[], Iterable[int]]]) -> None:
        self.roots = roots
        self.pid_sets = pid_sets
        self.others_by_name: dict[str, float] = {}
        self.start: tuple[float, tuple[int, int], dict[str, dict[int, float]], dict[int, tuple[int, float]]] | None = (
            None
        )

    def _components(self, table: dict[int, tuple[int, float]]) -> dict[str, dict[int, float]]:
        found = {name: tree(table, root) for name, root in self.roots.items()}
        found |= {name: set(pids()) & table.keys() for name, pids in self.pid_sets.items()}
        found["bench process"] = {os.getpid()}
        return {name: {pid: table[pid][1] for pid in pids} for name, pids in found.items()}

    def begin(self) -> None:
        table = process_table()
        self.start = (time.monotonic(), machine_jiffies(), self._components(table), table)

    def end(self) -> dict[str, float]:
        """CPU seconds per component since begin(), plus the window and the machine's figures."""
        assert self.start is not None
        started, (busy0, total0), before, table0 = self.start
        wall = time.monotonic() - started
        busy1, total1 = machine_jiffies()
        table = process_table()
        used = {}
        mine: set[int] = set()
        for name, pids in self._components(table).items():
            # A pid that appeared during the window started at 0.
            used[name] = sum(cpu - before.get(name, {}).get(pid, 0.0) for pid, cpu in pids.items())
            mine |= pids.keys()
        self.others_by_name = others_by_name(table0, table, mine)
        cpus = os.cpu_count() or 1
        machine_busy = (busy1 - busy0) / TICKS
        return {
            **used,
            "others": max(0.0, machine_busy - sum(used.values())),
            "machine busy": machine_busy,
            "machine capacity": (total1 - total0) / TICKS,
            "window_s": wall,
            "cpus": cpus,
        }


def others_by_name(
    before: dict[int, tuple[int, float]], after: dict[int, tuple[int, float]], mine: set[int]
) -> dict[str, float]:
    """CPU seconds of the other live processes, by command name, largest first."""
    by_name: dict[str, float] = {}
    for pid, (_, cpu) in after.items():
        used = cpu - before.get(pid, (0, 0.0))[1]
        if pid in mine or used <= 0:
            continue
        try:
            name = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        by_name[name] = by_name.get(name, 0.0) + used
    return dict(sorted(by_name.items(), key=lambda item: -item[1]))


def pids_named(name: str) -> list[int]:
    """Processes whose command name is `name` (e.g. redis-server)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found
