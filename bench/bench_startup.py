"""How fast `newsletter` starts: wall time of --help, --version, status and health, beside
the bare interpreter measured in the same run, the CPU time each used (user + system),
and the share of each spent importing (`python -X importtime`, summed over top-level
imports).

    .venv/bin/python bench/bench_startup.py [runs]

Run in a scratch folder with a demo database (made here). On a loaded machine the wall
times swing (a process waits for a core); CPU time and the import share say more.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

COMMANDS = [("--help",), ("--version",), ("status",), ("health",)]


def timed(args: list[str], cwd: str, runs: int) -> tuple[float, float]:
    """Median wall and CPU seconds of `runs` runs."""
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(args, cwd=cwd, capture_output=True, check=False)
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def import_seconds(args: list[str], cwd: str) -> float:
    done = subprocess.run([sys.executable, "-X", "importtime", *args], cwd=cwd,
                          capture_output=True, text=True, check=False)
    total = 0
    for line in done.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit() and not parts[2].startswith("  "):
            total += int(parts[1])  # cumulative microseconds of a top-level import
    return total / 1e6


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    folder = tempfile.mkdtemp(prefix="bench-startup-")
    env_keys = [k for k in os.environ if k.startswith("NEWSLETTER_")]
    for key in env_keys:
        del os.environ[key]
    subprocess.run([sys.executable, "-m", "newsletter", "demo"], cwd=folder,
                   capture_output=True, check=True)
    bare, _ = timed([sys.executable, "-c", "pass"], folder, runs)
    print(f"python -c pass: {bare * 1000:.0f} ms (baseline, {runs} runs, median)")
    for command in COMMANDS:
        args = ["-m", "newsletter", *command]
        seconds, cpu = timed([sys.executable, *args], folder, runs)
        imports = import_seconds(args, folder)
        print(f"newsletter {' '.join(command):<10} {seconds * 1000:6.0f} ms "
              f"({seconds / bare:4.1f}x bare python; cpu {cpu * 1000:.0f} ms; "
              f"imports {imports * 1000:.0f} ms)")
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
