# %% [markdown]
# # Command line
# > `dbxml`: one command for people and for CI, with errors that say what to do.
#
# Every subcommand takes `--target` (default: `DBXML_TARGET`, then `dbxml.toml`'s
# default). A `DbxmlError` anywhere is printed as one line, `dbxml: <message>`, with
# exit status 1; anything else is a bug and keeps its traceback. Subcommands import
# what they need when they run, so `dbxml --help` and `dbxml check` start quickly and
# never load Spark or MLflow.

# %%
#| default_exp cli

# %%
#| export
from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

from dbxml.config import DbxmlError, Target, load_target, target_values

# %%
#| hide
import contextlib
import io
import tempfile

from fastcore.test import test_eq, test_fail


# %% [markdown]
# ## Subcommands
#
# Each subcommand is a plain function of the parsed arguments that returns an exit
# status, so it can be called and tested without a shell.

# %%
#| export
def show_target(args: argparse.Namespace) -> int:
    "`dbxml info`: print the resolved target, one field a line."
    target = load_target(args.target)
    print(f"target: {target.name}")
    for field, value in target_values(target).items():
        print(f"  {field}: {value}")
    return 0


# %%
#| export
SUPPORTED_PYTHONS = ((3, 10), (3, 12))  # oldest and newest supported, as in settings.ini and setup.py

def check_python() -> str:
    "This interpreter's version, if dbxml supports it; else a `DbxmlError`."
    version, (oldest, newest) = sys.version_info[:2], SUPPORTED_PYTHONS
    if not oldest <= version <= newest:
        raise DbxmlError(f"dbxml supports Python {oldest[0]}.{oldest[1]} to {newest[0]}.{newest[1]}, "
                         f"this is {version[0]}.{version[1]}.")
    return "%d.%d" % version


# %% [markdown]
# On Databricks, the doctor also names who the workspace says you are:

# %%
#| export
def databricks_identity() -> str:
    "Who the Databricks SDK's unified configuration authenticates as; a `DbxmlError` when it cannot."
    from dbxml.databricks import check_auth, workspace_client

    client = workspace_client()
    return f"{check_auth(client)} at {client.config.host}"


# %% [markdown]
# A local run needs room in its home, and Delta's jars in the cache (or the network to
# fetch them once):

# %%
#| export
MIN_FREE_DISK_GB = 1  # measured: a year's run leaves about 100 MB under the home, Delta's jars and Ivy's cache 175 MB;
                      # the rest is headroom for Spark's temporary files

def check_free_disk(home: Path,  # the target's home; it need not exist yet
                    needed_gb: float = MIN_FREE_DISK_GB,
                   ) -> str:
    "The free space where `home` lives, if at least `needed_gb`; else a `DbxmlError`."
    existing = next(folder for folder in (home.resolve(), *home.resolve().parents) if folder.exists())
    free_gb = shutil.disk_usage(existing).free / 1e9
    if free_gb < needed_gb:
        raise DbxmlError(f"only {free_gb:.1f} GB free under {existing}; a local run needs about {needed_gb} GB. "
                         "Free some space, or point DBXML_HOME at a bigger disk.")
    return f"{free_gb:.0f} GB free under {existing}"

def describe_jars_cache(cache: Path) -> str:
    "Whether Delta's jars are cached in `cache`, and what happens if not."
    from dbxml.spark import cached_jars

    jars = cached_jars(cache)
    if jars:
        return f"{len(jars)} jars cached in {cache}"
    return f"not cached yet: the first Spark start fetches them from Maven Central into {cache} (once)"


# %% [markdown]
# `dbxml doctor` runs every check and prints one line each; the first failure is the
# message and the exit status.

# %%
#| export
def doctor(args: argparse.Namespace) -> int:
    "`dbxml doctor`: check the prerequisites of a target; every check is printed, and any failure ends in an error."
    from dbxml.spark import check_java, check_worker_python, jars_cache

    target = load_target(args.target)
    checks = [("python", check_python)]
    if target.is_local:
        checks += [("spark workers", check_worker_python),
                   ("java", lambda: f"Java {check_java()}"),
                   ("disk", lambda: check_free_disk(Path(target.home))),
                   ("delta jars", lambda: describe_jars_cache(jars_cache()))]
    else:  # a Databricks target: the credentials the SDK finds must reach the workspace
        checks += [("databricks auth", databricks_identity)]
    failures = 0
    for name, check in checks:
        try:
            print(f"ok    {name}: {check()}")
        except DbxmlError as error:
            failures += 1
            print(f"FAIL  {name}: {error}", file=sys.stderr)
    if failures:
        raise DbxmlError(f"{failures} prerequisite(s) missing for target {target.name!r}; see above.")
    return 0


# %% [markdown]
# The disk check walks up from a home that does not exist yet to the folder it would be
# made in; a demand no disk meets is one line that says what to do:

# %%
assert "GB free under" in check_free_disk(Path(tempfile.mkdtemp()) / "not" / "made" / "yet")
test_fail(lambda: check_free_disk(Path("."), needed_gb=1e9), contains="point DBXML_HOME at a bigger disk")
assert describe_jars_cache(Path(tempfile.mkdtemp())).startswith("not cached yet")


# %%
#| export
def smoke(args: argparse.Namespace) -> int:
    "`dbxml smoke`: run the smoke job (Spark, Delta Lake, MLflow) on the target."
    from dbxml.smoke import run_smoke

    result = run_smoke(load_target(args.target), rows=args.rows)
    print(f"wrote and read {result['rows']} rows: {result['table']} (Delta version {result['delta_version']})")
    print(f"MLflow run {result['run_id']} in {result['tracking_uri']}")
    return 0


# %% [markdown]
# `dbxml run` is the main job, and the one way to run the pipeline here: the bundle's job
# graph run locally ([the runner](32_runner.ipynb)), with papermill, or with
# `--in-process` as calls of [the task functions](24_tasks.ipynb) in this process. It
# prints a line per task as it goes, then the summary table and where to look next, and
# exits non-zero when a task failed. A month the watermark already holds is skipped, and
# it says so; `--again` runs it anyway. A range of months runs one month after another,
# as Databricks runs a backfill's queued runs; `--overlap` starts each month's lakehouse
# task while the month before it scores, monitors and trains (see the runner for when
# that helps).

# %%
#| export
def check_months_landed(target: Target,
                        months: str,  # the run's `month` parameter: a month or a range
                       ) -> None:
    "Check every file of the months against the landing contract before any task starts (a bad month is the task's)."
    from dbxml.lakehouse import check_landing
    from dbxml.sources import parse_months
    try:
        wanted = parse_months(months)
    except DbxmlError:
        return  # not a month: the lakehouse task refuses it, naming its cell, like any task failure
    check_landing(target, wanted)

def run_job_command(args: argparse.Namespace) -> int:
    "`dbxml run`: run a job of the bundle locally, for a month or a range of months."
    from dbxml.runner import Progress, evidence_name, parse_assignments, run_job, summary_table

    target = load_target(args.target)
    parameters = parse_assignments(args.parameter)
    if args.job == "monthly" and target.is_local:
        check_months_landed(target, parameters.get("month", ""))
    outcome = run_job(target, args.job, parameters, Progress(), in_process=args.in_process, profile=args.profile,
                      again=args.again, overlap=args.overlap)
    print(f"\n{summary_table(outcome.results)}\n")
    if outcome.profiles:
        print(f"the profile ({outcome.folder / 'profile.md'}):\n{(outcome.folder / 'profile.md').read_text()}")
    if outcome.skipped and not outcome.results:
        print(f"nothing new: {', '.join(outcome.skipped)} already processed (dbxml.watermark); "
              "pass --again to run them again.")
    if any(result.values.get("state") == "nothing new" for result in outcome.results):
        print("nothing new: every month that has landed is processed (dbxml.watermark); land the next month's "
              "file, or pass -p month=YYYY-MM to rebuild one.")
    print(f"{'the run' if args.in_process or args.profile else 'executed notebooks'}: {outcome.folder}")
    print(f"MLflow: {len(outcome.mlflow_runs)} run(s) in experiment /Shared/dbxml/jobs; browse them with: dbxml ui")
    for failure in outcome.failed:
        where = f"\n  {evidence_name(failure.notebook)}: {failure.notebook}" if failure.notebook else ""
        print(f"FAILED: {failure.run} {failure.task}: {failure.error}{where}",
              file=sys.stderr)
    return 1 if outcome.failed else 0


# %%
#| export
def mlflow_ui(args: argparse.Namespace) -> int:
    "`dbxml ui`: the MLflow UI over the target's local tracking store and registry, until interrupted."
    target = load_target(args.target)
    if not target.is_local:
        raise DbxmlError(f"target {target.name!r} tracks in the Databricks workspace: open its Experiments and "
                         "Models pages there.")
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", target.mlflow_tracking_uri,
               "--registry-store-uri", target.mlflow_registry_uri, "--host", args.host, "--port", str(args.port)]
    print(f"MLflow UI for target {target.name!r} at http://{args.host}:{args.port} (home {target.home}); "
          "Ctrl-C stops it.", flush=True)
    # the UI starts worker processes of its own: run it as a process group and stop the whole group,
    # on Ctrl-C or when this process is terminated, so no worker outlives it
    server = subprocess.Popen(command, start_new_session=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        return server.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=60)


# %%
#| export
def check(args: argparse.Namespace) -> int:
    "`dbxml check`: the hygiene rules, then (unless `--no-sync`) the sync check; `--fix` first fixes what it can."
    from dbxml.hygiene import fix_repository, hygiene_problems, sync_problems

    root = Path(args.root)
    if args.fix:
        for changed in fix_repository(root):
            print(changed)
    problems = hygiene_problems(root) + ([] if args.no_sync else sync_problems(root))
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems and args.fix:
        raise DbxmlError(f"{len(problems)} notebook hygiene problem(s) that --fix cannot fix; see above.")
    if problems:
        raise DbxmlError(f"{len(problems)} notebook hygiene problem(s); see above. To fix them, run "
                         "`dbxml check --fix` and commit what it changes (a token or key, or a twin whose notebook "
                         "is gone, needs a person).")
    print("notebooks clean, twins current" + ("" if args.no_sync else ", library and README in sync"))
    return 0


# %%
#| export
def release(args: argparse.Namespace) -> int:
    "`dbxml release`: bump the version and write its changelog section; `--check TAG`: what the release workflow checks."
    from dbxml.release import check_release, prepare_release

    if args.check:
        notes = check_release(args.root, args.check)
        if args.notes:
            Path(args.notes).write_text(notes)
        print(notes, end="")
        return 0
    version = prepare_release(args.root, part=args.part)
    print(f"version {version}: settings.ini, the package's __init__.py and CHANGELOG.md's new section. Review them, "
          f"merge, then tag the merge v{version} (release.yml publishes it).")
    return 0


# %%
#| export
def spark_server(args: argparse.Namespace) -> int:
    "`dbxml spark-server`: serve the target's local lakehouse over Spark Connect until interrupted."
    from dbxml.spark import connect_server

    target = load_target(args.target)
    if not target.is_local:
        raise DbxmlError(f"target {target.name!r} runs on Databricks, which serves Spark Connect itself.")
    with connect_server(target, port=args.port) as url:
        print(f"Spark Connect server for target {target.name!r} at {url} (home {target.home}); Ctrl-C stops it.")
        print(f"Connect with: DBXML_TARGET=connect DBXML_SPARK_REMOTE={url} dbxml ...", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("stopping")
    return 0


# %% [markdown]
# ## The parser and `main`

# %%
#| export
def parser() -> argparse.ArgumentParser:
    "The `dbxml` argument parser."
    main_parser = argparse.ArgumentParser(prog="dbxml", description="dbxml: notebook-native MLOps for Databricks.")
    commands = main_parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name, function, help):
        command = commands.add_parser(name, help=help, description=help)
        command.add_argument("--target", help="target from dbxml.toml (default: DBXML_TARGET, then the file's default)")
        command.set_defaults(function=function)
        return command

    add("info", show_target, "show the resolved target")
    add("doctor", doctor, "check the prerequisites (Python and Spark's workers, Java, disk, Delta jars)")
    add("smoke", smoke, "run the smoke job: Spark, Delta Lake and MLflow together").add_argument(
        "--rows", type=int, default=1000, help="rows to write (default: 1000)")
    runner = add("run", run_job_command, "run a job of the bundle locally with papermill (the main job)")
    runner.add_argument("job", nargs="?", default="monthly", help="the job's key in the bundle (default: monthly)")
    runner.add_argument("-p", "--parameter", action="append", default=[], metavar="KEY=VALUE",
                        help="a job parameter, e.g. -p month=2013-05 or -p month=2013-01..2013-12 (repeatable); "
                             "without a month, the oldest landed month not processed yet")
    runner.add_argument("--in-process", action="store_true",
                        help="call the task functions in this process (one JVM, no notebooks) instead of papermill")
    runner.add_argument("--again", action="store_true",
                        help="run months the watermark already holds (by default they are skipped)")
    runner.add_argument("--overlap", action="store_true",
                        help="for a range of months, start each month's lakehouse task while the month before it "
                             "scores, monitors and trains (for a machine with cores to spare)")
    runner.add_argument("--profile", action="store_true",
                        help="in process, measure each task (seconds, Spark jobs, Delta commits, files read, rows "
                             "written) and print the table (a local target)")
    viewer = add("ui", mlflow_ui, "open the MLflow UI over the local runs and model registry")
    viewer.add_argument("--port", type=int, default=5000, help="port (default: 5000)")
    viewer.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: 127.0.0.1)")
    add("spark-server", spark_server, "serve the local lakehouse over Spark Connect").add_argument(
        "--port", type=int, default=15002, help="gRPC port (default: 15002)")
    checker = add("check", check, "check notebook hygiene and that library and README are in sync")
    checker.add_argument("--root", default=".", help="repository root (default: .)")
    checker.add_argument("--no-sync", action="store_true", help="skip the sync check (it rewrites generated files)")
    checker.add_argument("--fix", action="store_true",
                         help="first fix notebooks saved by Databricks (ids, kernelspec, UI metadata), the library, "
                              "README and twins; print each file changed")
    releaser = add("release", release, "prepare a release: the next version and its CHANGELOG.md section")
    releaser.add_argument("--part", type=int, choices=(0, 1, 2), default=2,
                          help="the part to raise: 0 major, 1 minor, 2 patch (default: 2)")
    releaser.add_argument("--root", default=".", help="repository root (default: .)")
    releaser.add_argument("--check", metavar="TAG",
                          help="instead, check that TAG matches the version and the changelog has its section")
    releaser.add_argument("--notes", metavar="FILE", help="with --check, also write the release notes to FILE")
    return main_parser


# %% [markdown]
# `dbxml run` skips the months the watermark holds unless `--again` says to run them:

# %%
test_eq([parser().parse_args(["run", *flag, "-p", "month=2013-03"]).again for flag in ([], ["--again"])],
        [False, True])


# %%
#| export
def main(argv: list[str] | None = None,  # arguments (default: `sys.argv[1:]`)
        ) -> int:
    "Run the `dbxml` command line; a `DbxmlError` becomes one line on stderr and exit status 1."
    args = parser().parse_args(argv)
    try:
        return args.function(args)
    except DbxmlError as error:
        print(f"dbxml: {error}", file=sys.stderr)
        return 1


# %% [markdown]
# A mistyped target is one line that lists the valid ones, and a non-zero status:

# %%
stderr = io.StringIO()
with contextlib.redirect_stderr(stderr):
    status = main(["info", "--target", "stagging"])
test_eq(status, 1)
test_eq(stderr.getvalue().splitlines(),
        ["dbxml: unknown target 'stagging'. Valid targets: local, connect, dev, staging, prod "
         f"(from {Path('../dbxml.toml').resolve()})."])

# %%
stdout = io.StringIO()
with contextlib.redirect_stdout(stdout):
    test_eq(main(["info", "--target", "prod"]), 0)
assert "  mlflow_registry_uri: databricks-uc" in stdout.getvalue().splitlines()

# %% [markdown]
# `dbxml doctor` prints one line per prerequisite; on this machine the Spark workers run
# this very interpreter:

# %%
stdout = io.StringIO()
with contextlib.redirect_stdout(stdout):
    test_eq(main(["doctor", "--target", "local"]), 0)
assert f"ok    spark workers: {sys.executable} (imports pandas, pyarrow, mlflow)" in stdout.getvalue().splitlines()
