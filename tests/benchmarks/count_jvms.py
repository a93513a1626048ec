"""Run a command and count the Spark driver JVMs that start while it runs (a local session or a Spark Connect
server; not Ivy's resolver, not launchers), with its wall time.

    python tests/benchmarks/count_jvms.py make test
    python tests/benchmarks/count_jvms.py .venv/bin/pytest -m "not slow"

The process table is sampled every 0.2 s, so a JVM that lives less than that can be missed; a Spark driver
lives for seconds at least. It prints the wall time, the number of JVMs, the most at once, and each JVM's
lifetime and the home it served. Not a test: it measures what a test run costs.
"""
import subprocess
import sys
import threading
import time


def spark_drivers() -> dict[int, str]:
    "pid -> command line of every running Spark driver JVM (a child of a JVM is its fork, not another JVM)."
    listing = subprocess.run(["ps", "-ww", "-eo", "pid,ppid,args"], capture_output=True, text=True).stdout
    rows = [line.split(maxsplit=2) for line in listing.splitlines()[1:] if len(line.split()) > 2]
    drivers = {int(pid): (int(parent), args) for pid, parent, args in rows
               if args.split()[0].endswith("java") and "deploy.SparkSubmit" in args and "launcher.Main" not in args}
    return {pid: args for pid, (parent, args) in drivers.items() if parent not in drivers}


def home_of(args: str) -> str:
    "The home a driver serves, from its Derby setting (`-Dderby.system.home=...`), else '?'."
    for part in args.split():
        if "derby.system.home=" in part:
            return part.split("=", 1)[1]
    return "?"


def main(command: list[str]) -> int:
    seen: dict[int, dict] = {}
    most = 0
    finished = threading.Event()

    def watch():
        nonlocal most
        while not finished.is_set():
            now, running = time.monotonic(), spark_drivers()
            most = max(most, len(running))
            for pid, args in running.items():
                seen.setdefault(pid, {"first": now, "home": home_of(args)})["last"] = now
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    started = time.monotonic()
    watcher.start()
    status = subprocess.run(command).returncode
    finished.set()
    watcher.join()
    wall = time.monotonic() - started
    print(f"\ncommand: {' '.join(command)}  (exit status {status})")
    print(f"wall time: {wall / 60:.1f} min ({wall:.0f} s)")
    print(f"Spark driver JVMs started: {len(seen)}; most at once: {most}")
    for pid, found in sorted(seen.items(), key=lambda item: item[1]["first"]):
        print(f"  pid {pid:>7}  at {found['first'] - started:5.0f} s  lived {found['last'] - found['first']:6.0f} s  {found['home']}")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
