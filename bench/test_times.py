"""Functional tests, then and now: run the same tests on a base revision and on this tree,
one after the other on the same machine, and list the tests that got slower.

    python -m bench.test_times [--base REV] [--threshold 1.25] [pytest args ...]
    make test-times BASE=<rev> TESTS="tests/messenger"

Wall time of one test varies with the machine's load, so a test counts as slower only when it
took `threshold` × its base time and at least half a second more. A slower test whose own
function differs between the trees is marked "changed": it may now test more (a test that
gained three CLI calls takes three CLI calls longer), which is no slowdown of the code. Prints
a table and writes bench/results/test_times.json. It reports; it does not fail a build
(timings are not a test).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from defusedxml import ElementTree

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# The last revision before the speed work of issue 22 (its CI passed): "today's make test".
DEFAULT_BASE = "3e68398"
MIN_EXTRA_S = 0.5


def run_tests(tree: Path, junit: Path, pytest_args: list[str]) -> tuple[float, int]:
    """Run pytest in `tree` (its own code first on sys.path); wall seconds and pytest's exit
    code."""
    started = time.perf_counter()
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    done = subprocess.run(
        [*command, f"--junitxml={junit}", *pytest_args],
        cwd=tree,
        check=False,
        stdout=subprocess.DEVNULL,
        # PYTHONPATH as well as the working directory: the servers and CLIs the tests start
        # would otherwise import the code the venv was installed from, not this tree's.
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(tree)},
    )
    return time.perf_counter() - started, done.returncode


def durations(junit: Path) -> dict[str, float]:
    """Test id → seconds, for the tests that passed."""
    times: dict[str, float] = {}
    root = ElementTree.parse(junit).getroot()
    for case in root.iter("testcase") if root is not None else ():
        if any(child.tag in ("failure", "error", "skipped") for child in case):
            continue
        times[f"{case.get('classname')}::{case.get('name')}"] = float(case.get("time", 0))
    return times


def trouble(junit: Path, exit_code: int) -> str | None:
    """Why a tree's run cannot be compared, or None: tests that could not run (collection or
    set-up errors: the base revision may need a package this venv no longer has, 3e68398
    imports aiosqlite), or pytest ending other than with passed and failed tests (a test id
    the tree lacks is a usage error, exit code 4, and no report). A comparison of the few
    that ran, or of none, would say nothing."""
    if exit_code not in (0, 1):
        return f"pytest exited with {exit_code}"
    count = errors(junit)
    return f"{count} could not run (collection or set-up errors)" if count else None


def errors(junit: Path) -> int:
    """The errors a JUnit report counts."""
    root = ElementTree.parse(junit).getroot()
    if root is None:
        return 0
    suites = [root] if root.tag == "testsuite" else list(root)
    return sum(int(suite.get("errors", 0)) for suite in suites)


def source_of_test(tree: Path, test_id: str) -> str | None:
    """The syntax tree (dumped, so formatting does not count) of the function behind a JUnit
    test id ("tests.e2e.test_x::test_y[param]" or "tests.x.test_y.TestClass::test_z") in
    `tree`, or None when there is none."""
    dotted, _, name = test_id.partition("::")
    name = name.split("[", 1)[0]
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):  # a class-based test's id names its class too
        path = tree.joinpath(*parts[:cut]).with_suffix(".py")
        if not path.is_file():
            continue
        module = ast.parse(path.read_text(encoding="utf-8"))
        scope: list[ast.stmt] = module.body
        for class_name in parts[cut:]:
            found = [n for n in scope if isinstance(n, ast.ClassDef) and n.name == class_name]
            if not found:
                return None
            scope = found[0].body
        for node in scope:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
                return ast.dump(node)
        return None
    return None


def compare(
    base: dict[str, float],
    head: dict[str, float],
    threshold: float,
    changed: Callable[[str], bool] = lambda test: False,
) -> dict[str, object]:
    common = sorted(base.keys() & head.keys())
    slowed = [
        t for t in common if head[t] > base[t] * threshold and head[t] - base[t] >= MIN_EXTRA_S
    ]
    slowed.sort(key=lambda t: head[t] - base[t], reverse=True)
    slower = [
        {"test": t, "base_s": round(base[t], 2), "now_s": round(head[t], 2), "changed": changed(t)}
        for t in slowed
    ]
    return {
        "tests_compared": len(common),
        "slower_unchanged": sum(not row["changed"] for row in slower),
        "base_sum_s": round(sum(base[t] for t in common), 1),
        "now_sum_s": round(sum(head[t] for t in common), 1),
        "slower": slower,
        "only_now": len(head.keys() - base.keys()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default=DEFAULT_BASE, help="the revision to compare with")
    parser.add_argument("--threshold", type=float, default=1.25)
    args, pytest_args = parser.parse_known_args(argv)
    pytest_args = pytest_args or ["tests"]
    with tempfile.TemporaryDirectory(prefix="test-times-") as scratch:
        base_tree = Path(scratch) / "base"
        subprocess.run(
            ["git", "worktree", "add", "-q", "--detach", str(base_tree), args.base],
            cwd=ROOT,
            check=True,
        )
        try:
            base_wall, base_exit = run_tests(base_tree, Path(scratch) / "base.xml", pytest_args)
            now_wall, now_exit = run_tests(ROOT, Path(scratch) / "now.xml", pytest_args)
            runs = {"base": base_exit, "now": now_exit}
            found = {name: trouble(Path(scratch) / f"{name}.xml", rc) for name, rc in runs.items()}
            broken = {name: why for name, why in found.items() if why}
            if broken:
                print(
                    "test_times: "
                    + "; ".join(f"{name}: {why}" for name, why in broken.items())
                    + "; no comparison (run that tree's tests to see why)",
                    file=sys.stderr,
                )
                return 1
            result = compare(
                durations(Path(scratch) / "base.xml"),
                durations(Path(scratch) / "now.xml"),
                args.threshold,
                lambda test: source_of_test(base_tree, test) != source_of_test(ROOT, test),
            )
            if not result["tests_compared"]:
                print("test_times: no test passed in both trees; no comparison", file=sys.stderr)
                return 1
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(base_tree)],
                cwd=ROOT,
                check=False,
            )
    result = {
        "base": args.base,
        "pytest_args": pytest_args,
        "base_wall_s": round(base_wall, 1),
        "now_wall_s": round(now_wall, 1),
        "load_average": os.getloadavg()[0],
        **result,
    }
    slower = result["slower"]
    assert isinstance(slower, list)
    print(f"tests compared: {result['tests_compared']} (base {args.base}, {' '.join(pytest_args)})")
    print(f"wall: base {result['base_wall_s']} s, now {result['now_wall_s']} s")
    print(f"sum of test times: base {result['base_sum_s']} s, now {result['now_sum_s']} s")
    print(
        f"slower than {args.threshold}× and +{MIN_EXTRA_S} s: {len(slower)}"
        f" ({result['slower_unchanged']} whose test is unchanged)"
    )
    for row in slower[:20]:
        mark = "  (test changed)" if row["changed"] else ""
        print(f"  {row['base_s']:>7.2f} → {row['now_s']:>7.2f} s  {row['test']}{mark}")
    out = HERE / "results" / "test_times.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
