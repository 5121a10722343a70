"""The chaos battery's bookkeeping, its senders' retries, and the HAProxy config the scale test
renders."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from bench.chaos import failed, summarise
from bench.cluster import HAPROXY_EXAMPLE, render_haproxy
from bench.ledger import Ledger
from bench.load import send_one
from messenger.client import ApiError, MessengerClient


def ledger_with(arrivals: dict[str, dict[str, list[float]]], sent: dict[str, float]) -> Ledger:
    ledger = Ledger(list(arrivals))
    for mid, at in sent.items():
        ledger.accepted(mid, at, at + 0.01)
    for receiver, messages in arrivals.items():
        for mid, times in messages.items():
            for t in times:
                ledger.arrived(receiver, mid, t)
    return ledger


def test_every_message_once_at_every_receiver_is_neither_loss_nor_duplicate() -> None:
    ledger = ledger_with(
        {"r1": {"m1": [1.1], "m2": [2.1]}, "r2": {"m1": [1.2], "m2": [2.2]}}, {"m1": 1.0, "m2": 2.0}
    )
    assert (ledger.losses(), ledger.duplicates(), ledger.strays()) == (0, 0, 0)
    assert ledger.complete()


def test_a_message_missing_at_one_receiver_is_one_loss() -> None:
    ledger = ledger_with(
        {"r1": {"m1": [1.1], "m2": [2.1]}, "r2": {"m1": [1.2]}}, {"m1": 1.0, "m2": 2.0}
    )
    assert ledger.losses() == 1
    assert ledger.missing() == {"r2": {"m2"}}
    assert not ledger.complete()
    assert ledger.delivered_at("m2") is None


def test_a_receiver_that_saw_nothing_loses_everything() -> None:
    ledger = ledger_with({"r1": {"m1": [1.1]}}, {"m1": 1.0})
    ledger.receivers.append("r2")
    assert ledger.losses() == 1


def test_every_arrival_beyond_the_first_at_a_receiver_is_a_duplicate() -> None:
    ledger = ledger_with({"r1": {"m1": [1.1, 1.5, 3.0]}, "r2": {"m1": [1.2, 1.3]}}, {"m1": 1.0})
    assert ledger.duplicates() == 3
    assert ledger.losses() == 0


def test_an_arrival_of_a_message_never_accepted_is_a_stray() -> None:
    ledger = ledger_with({"r1": {"m1": [1.1], "ghost": [1.4]}}, {"m1": 1.0})
    assert ledger.strays() == 1


def test_recovery_runs_from_the_fault_to_the_first_later_message_at_every_receiver() -> None:
    ledger = Ledger(["r1", "r2"])
    ledger.accepted("before", 9.0, 9.01)
    ledger.accepted("first after", 10.5, 12.0)  # tried at 10.5, accepted after retries
    ledger.accepted("second after", 12.1, 12.2)
    for receiver, at in (("r1", 12.3), ("r2", 14.0)):
        ledger.arrived(receiver, "first after", at)
        ledger.arrived(receiver, "second after", at)
        ledger.arrived(receiver, "before", 9.1)
    assert ledger.recovery(10.0) == pytest.approx(4.0)
    assert ledger.recovery(20.0) is None  # nothing tried after the fault


def test_recovery_is_unknown_while_the_first_later_message_lacks_a_receiver() -> None:
    ledger = ledger_with({"r1": {"m1": [11.0]}, "r2": {}}, {"m1": 10.5})
    assert ledger.recovery(10.0) is None


def test_a_scenario_with_any_loss_duplicate_or_unrecovered_fault_fails() -> None:
    clean = ledger_with({"r1": {"m1": [1.1]}}, {"m1": 1.0})
    lossy = ledger_with({"r1": {}}, {"m1": 1.0})
    twice = ledger_with({"r1": {"m1": [1.1, 1.2]}}, {"m1": 1.0})
    assert not failed(summarise("ok", [clean], [0.5], 0))
    assert failed(summarise("lost", [clean, lossy], [0.5, 0.7], 0))
    assert failed(summarise("twice", [twice], [0.5], 0))
    assert failed(summarise("stuck", [clean], [None], 0))
    unsent = ledger_with({"r1": {}}, {})
    unsent.unsent.append("m1")
    assert failed(summarise("never accepted", [unsent], [0.5], 0))


def test_the_rendered_config_keeps_the_example_and_lists_the_given_nodes() -> None:
    example = HAPROXY_EXAMPLE.read_text(encoding="utf-8")
    nodes = [("n1", "10.0.0.1:8470"), ("n2", "10.0.0.2:8470"), ("n3", "10.0.0.3:8470")]
    rendered = render_haproxy(
        example, bind="127.0.0.1:9000", servers=nodes, stats_bind="127.0.0.1:9001"
    )
    servers = [ln.split()[1:3] for ln in rendered.splitlines() if ln.strip().startswith("server ")]
    assert servers == [["n1", "10.0.0.1:8470"], ["n2", "10.0.0.2:8470"], ["n3", "10.0.0.3:8470"]]
    example_server = next(ln for ln in example.splitlines() if ln.strip().startswith("server "))
    options = example_server.split(None, 3)[3]
    assert all(
        ln.endswith(options) for ln in rendered.splitlines() if ln.strip().startswith("server ")
    )
    binds = [ln.strip() for ln in rendered.splitlines() if ln.strip().startswith("bind ")]
    assert binds == ["bind 127.0.0.1:9000", "bind 127.0.0.1:9001"]

    # Everything else is the example's, line for line.
    def rest(text: str) -> list[str]:
        return [ln for ln in text.splitlines() if not ln.strip().startswith(("server ", "bind "))]

    assert rest(rendered) == rest(example)


def test_a_template_without_server_lines_is_refused() -> None:
    with pytest.raises(ValueError, match="no server line"):
        render_haproxy("frontend messenger\n    bind :80\n", bind=":81", servers=[("a", "b:1")])


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed")
def test_haproxy_accepts_the_example_and_the_rendered_config(tmp_path: Path) -> None:
    rendered = tmp_path / "haproxy.cfg"
    rendered.write_text(
        render_haproxy(
            HAPROXY_EXAMPLE.read_text(encoding="utf-8"),
            bind="127.0.0.1:9000",
            servers=[("a", "127.0.0.1:1"), ("b", "127.0.0.1:2")],
        )
    )
    for path in (HAPROXY_EXAMPLE, rendered):
        check = subprocess.run(
            ["haproxy", "-c", "-f", str(path)], capture_output=True, text=True, check=False
        )
        assert check.returncode == 0, check.stdout + check.stderr


async def test_a_send_is_repeated_with_one_transaction_id_until_accepted() -> None:
    bodies: list[dict[str, object]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        if len(bodies) == 1:
            raise httpx.ConnectError("node gone")
        if len(bodies) == 2:
            return httpx.Response(503, json={"error": "unavailable", "detail": "try again"})
        return httpx.Response(
            200,
            json={
                "message_id": "m",
                "conversation_id": "c",
                "seq": 1,
                "ts": "t",
                "duplicate": False,
            },
        )

    client = MessengerClient("http://t", transport=httpx.MockTransport(answer), retries=1)
    client.token, client.device_id = "token", "device"
    ledger = Ledger(["r1"])
    await send_one(client, "c", "s0-0", ledger, give_up=10)
    await client.aclose()
    assert len({b["txn_id"] for b in bodies}) == 1 and len(bodies) == 3
    assert ledger.send_errors == 2
    assert list(ledger.sent) == ["s0-0"] and not ledger.unsent


async def test_a_send_refused_for_good_is_not_repeated() -> None:
    calls = 0

    def answer(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(403, json={"error": "forbidden", "detail": "not a member"})

    client = MessengerClient("http://t", transport=httpx.MockTransport(answer), retries=1)
    client.token, client.device_id = "token", "device"
    with pytest.raises(ApiError):
        await send_one(client, "c", "s0-0", Ledger(["r1"]), give_up=10)
    await client.aclose()
    assert calls == 1


def test_test_times_counts_a_test_slower_only_past_the_ratio_and_half_a_second(
    tmp_path: Path,
) -> None:
    from bench.test_times import compare, durations

    junit = tmp_path / "now.xml"
    junit.write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="t" name="fast" time="0.30"/>'
        '<testcase classname="t" name="slow" time="4.00"/>'
        '<testcase classname="t" name="broken" time="9.0"><failure message="x"/></testcase>'
        '<testcase classname="t" name="new" time="1.0"/>'
        "</testsuite></testsuites>"
    )
    now = durations(junit)
    assert "t::broken" not in now  # a failed test's time says nothing
    base = {"t::fast": 0.1, "t::slow": 2.0, "t::broken": 1.0}
    result = compare(base, now, threshold=1.25)
    # fast tripled but by 0.2 s: noise; slow doubled by 2 s: slower
    assert result["slower"] == [{"test": "t::slow", "base_s": 2.0, "now_s": 4.0, "changed": False}]
    assert result["tests_compared"] == 2 and result["only_now"] == 1
    assert result["slower_unchanged"] == 1
    marked = compare(base, now, threshold=1.25, changed=lambda test: test == "t::slow")
    assert marked["slower"][0]["changed"] and marked["slower_unchanged"] == 0


def test_test_times_tells_a_test_that_does_more_now_from_one_that_is_the_same(
    tmp_path: Path,
) -> None:
    """A slower test whose own function changed may just test more: it is marked so."""
    from bench.test_times import source_of_test

    base, now = tmp_path / "base", tmp_path / "now"
    for tree, extra in ((base, ""), (now, "\n    assert cli('tasks', 'show')")):
        (tree / "tests" / "e2e").mkdir(parents=True)
        (tree / "tests" / "e2e" / "test_x.py").write_text(
            "def test_same(a):\n    assert a\n\n\n"
            f"def test_grown(cli):\n    assert cli('tasks', 'create'){extra}\n\n\n"
            "class TestGroup:\n    async def test_inner(self):\n        pass\n"
        )
    # Formatting alone is no change.
    text = (now / "tests" / "e2e" / "test_x.py").read_text()
    (now / "tests" / "e2e" / "test_x.py").write_text(text.replace("(a):", "(  a  ):"))
    same, grown = "tests.e2e.test_x::test_same[sqlite]", "tests.e2e.test_x::test_grown"
    inner = "tests.e2e.test_x.TestGroup::test_inner"
    assert source_of_test(base, same) is not None
    assert source_of_test(base, same) == source_of_test(now, same)
    assert source_of_test(base, grown) != source_of_test(now, grown)
    assert source_of_test(base, inner) is not None
    assert source_of_test(base, inner) == source_of_test(now, inner)
    assert source_of_test(base, "tests.e2e.test_x::test_gone") is None
    assert source_of_test(base, "tests.e2e.test_missing::test_same") is None


def test_test_times_compares_nothing_when_a_tree_could_not_run_its_tests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A base revision whose tests fail to import (a package this venv no longer has) once
    gave "0 slower" from the few tests that ran."""
    import bench.test_times as test_times

    def run_tests(tree: Path, junit: Path, pytest_args: list[str]) -> tuple[float, int]:
        errors = 3 if junit.name == "base.xml" else 0
        junit.write_text(
            f'<testsuites><testsuite name="pytest" errors="{errors}">'
            '<testcase classname="t" name="a" time="1.0"/></testsuite></testsuites>'
        )
        return 1.0, 1

    monkeypatch.setattr(test_times, "run_tests", run_tests)
    monkeypatch.setattr(test_times.subprocess, "run", lambda *a, **k: None)  # no worktree
    assert test_times.main(["--base", "abc", "tests/x"]) == 1
    assert "base: 3 could not run" in capsys.readouterr().err


def test_test_times_compares_nothing_when_pytest_refused_the_test_ids(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A test id the base lacks (a parameter added since) is a usage error: pytest exits
    with 4 and runs nothing in either tree. That once printed "0 slower" and exit code 0."""
    import bench.test_times as test_times

    def run_tests(tree: Path, junit: Path, pytest_args: list[str]) -> tuple[float, int]:
        # pytest still writes a report, with no test and no error in it
        junit.write_text('<testsuites><testsuite name="pytest" errors="0" tests="0"/></testsuites>')
        return 1.0, 4

    monkeypatch.setattr(test_times, "run_tests", run_tests)
    monkeypatch.setattr(test_times.subprocess, "run", lambda *a, **k: None)
    assert test_times.main(["--base", "abc", "tests/x.py::t[new]"]) == 1
    err = capsys.readouterr().err
    assert "base: pytest exited with 4" in err and "now: pytest exited with 4" in err


def test_test_times_with_no_test_passed_in_both_trees_compares_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import bench.test_times as test_times

    def run_tests(tree: Path, junit: Path, pytest_args: list[str]) -> tuple[float, int]:
        name = "old" if junit.name == "base.xml" else "new"  # no test in common
        junit.write_text(
            '<testsuites><testsuite name="pytest" errors="0">'
            f'<testcase classname="t" name="{name}" time="1.0"/></testsuite></testsuites>'
        )
        return 1.0, 0

    monkeypatch.setattr(test_times, "run_tests", run_tests)
    monkeypatch.setattr(test_times.subprocess, "run", lambda *a, **k: None)
    assert test_times.main(["--base", "abc", "tests/x"]) == 1
    assert "no test passed in both trees" in capsys.readouterr().err
