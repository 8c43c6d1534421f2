"""The dashboard in a real headless Chromium (Debian's ``chromium``, driven by Playwright) against a
3-node loopback cluster: log in, see the nodes, expand the supervision tree, kill an actor and watch
its restart count change without a reload, submit a job and watch its log lines arrive.

Screenshots go to the test's output directory (and, with $ACTORLIB_DASHBOARD_SCREENSHOTS set, to
that directory too: that is how docs/images/ is refreshed).
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

import actorlib
from actorlib.util import placement_group, remove_placement_group, state

from ..integration.conftest import poll, wait_gone
from .conftest import Dash

pytestmark = pytest.mark.slow
CHROMIUM = "/usr/bin/chromium"
TIMEOUT = 30_000  # ms: how long the page may take to show what the cluster did


@pytest.fixture(scope="module")
def browser() -> Iterator:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Debian's chromium is not installed at {CHROMIUM} (apt-get install -y chromium; .ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM)
        pids = [p.pid for p in psutil.Process().children(recursive=True) if "chrom" in p.name().lower()]
        assert pids, "no chromium process started"
        try:
            yield chromium
        finally:
            chromium.close()
    assert not wait_gone(pids, 10), "chromium processes left behind"


class Shots:
    """Screenshots into the test's output directory (and $ACTORLIB_DASHBOARD_SCREENSHOTS)."""

    def __init__(self, page, folder: Path) -> None:
        self.page = page
        self.folder = folder
        self.extra = os.environ.get("ACTORLIB_DASHBOARD_SCREENSHOTS")

    def __call__(self, name: str, full_page: bool = False) -> None:
        path = self.folder / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        assert path.stat().st_size > 10_000
        if self.extra:
            shutil.copy(path, Path(self.extra) / path.name)


@actorlib.remote(max_restarts=3, max_task_retries=3, resources={"ssd": 1})
class Counter:
    def __init__(self) -> None:
        self.n = 0

    def pid(self) -> int:
        return os.getpid()


@actorlib.remote
def browser_ok(x: int) -> int:
    return x + 1


@actorlib.remote
def browser_fail() -> None:
    raise RuntimeError("the dashboard shows this failure")


def tree_path(actor_id: str) -> str:
    """The supervision tree path of the actor's process, from the state API."""
    def walk(item):
        yield item
        for child in item.children:
            yield from walk(child)

    for node in state.get_tree().nodes:
        for item in walk(node.root) if node.root is not None else []:
            if item.actor_id == actor_id and item.role == "actor":
                return item.path
    raise AssertionError(f"actor {actor_id} is not in the tree")


def test_an_operator_watches_the_cluster_live(dash: Dash, browser, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT)
    errors: list[str] = []
    urls: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda request: urls.append(request.url))
    shot = Shots(page, tmp_path)
    node_ids = dash.node_ids()

    # Log in: the login form is the 401 answer; the cookie is HttpOnly and SameSite=Strict.
    assert page.goto(f"{dash.url}/nodes").status == 401
    shot("login")
    page.fill("#token", dash.token)
    page.click("#login")
    page.wait_for_url(f"{dash.url}/nodes")
    (cookie,) = context.cookies()
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["value"] != dash.token
    assert page.evaluate("document.cookie") == ""  # not readable from scripts

    # The nodes, each with its workers.
    for ip in ("127.0.0.1", "127.0.0.2", "127.0.0.3"):
        expect(page.locator(f"section[data-node-id='{node_ids[ip]}'] h2")).to_contain_text(ip)
    counter = Counter.remote()
    pid = actorlib.get(counter.pid.remote())
    actor_id = counter._actor_id.hex()
    expect(page.locator(f"section[data-node-id='{node_ids['127.0.0.2']}'] td", has_text="Counter")).to_have_count(1)
    shot("nodes", full_page=True)

    # The supervision tree: expand down to the actor's process, then kill it and watch the restart.
    page.goto(f"{dash.url}/tree")
    path = tree_path(actor_id)
    node = node_ids["127.0.0.2"]
    parts = path.split("/")
    for depth in range(1, len(parts)):
        row = page.locator(f".row[data-node='{node}'][data-path='{'/'.join(parts[:depth])}']")
        toggle = row.locator(".toggle")
        expect(toggle).not_to_have_text("")
        if toggle.inner_text() == "▸":
            toggle.click()
        expect(toggle).to_have_text("▾")
    process = page.locator(f".row[data-node='{node}'][data-path='{path}']")
    expect(process.locator(".restarts")).to_have_text("0")
    page.evaluate("window.__sameDocument = true")
    os.kill(pid, signal.SIGKILL)
    expect(process.locator(".restarts")).to_have_text("1")
    expect(process).to_contain_text("killed by SIGKILL")
    assert page.evaluate("window.__sameDocument") is True  # updated live, not reloaded
    shot("tree", full_page=True)

    # Actors: the restart count changes live here too; the detail shows the last exit.
    page.goto(f"{dash.url}/actors")
    row = page.locator(f"tr[data-actor-id='{actor_id}']")
    expect(row.locator(".restarts")).to_have_text("1")
    page.evaluate("window.__sameDocument = true")
    pid = poll(lambda: (p := actorlib.get(counter.pid.remote())) != pid and p)
    os.kill(pid, signal.SIGKILL)
    expect(row.locator(".restarts")).to_have_text("2")
    assert page.evaluate("window.__sameDocument") is True
    row.click()
    expect(page.locator("#actor-detail")).to_contain_text("killed by SIGKILL")
    shot("actors", full_page=True)

    # Jobs: submit one from the page and watch its log lines arrive while it runs.
    go = tmp_path / "go"
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent(f"""
        import os, time
        print("first line from the job", flush=True)
        while not os.path.exists({str(go)!r}):
            time.sleep(0.05)
        print("last line from the job", flush=True)
    """))
    page.goto(f"{dash.url}/jobs")
    page.evaluate("window.__sameDocument = true")
    page.fill("#entrypoint", f"{sys.executable} {script}")
    page.click("#submit-job")
    log = page.locator("#job-log")
    expect(log).to_contain_text("first line from the job")
    assert "last line" not in log.inner_text()  # the job is still waiting: this line arrived live
    go.touch()
    expect(log).to_contain_text("last line from the job")
    expect(page.locator("tr.selected")).to_contain_text("SUCCEEDED")
    assert page.evaluate("window.__sameDocument") is True
    shot("jobs", full_page=True)

    # Tasks: the summary by function, and a failure with its traceback.
    assert actorlib.get([browser_ok.remote(i) for i in range(10)]) == list(range(1, 11))
    with pytest.raises(RuntimeError):
        actorlib.get(browser_fail.remote())
    page.goto(f"{dash.url}/tasks")
    failure = page.locator("tr", has_text="the dashboard shows this failure").first
    expect(failure).to_be_visible()
    failure.locator("summary").click()
    expect(failure.locator("pre.traceback")).to_contain_text('raise RuntimeError("the dashboard shows this failure")')
    expect(page.locator("tr[data-function$='browser_ok'] td").nth(2)).to_have_text("10")
    shot("tasks", full_page=True)

    # Placement groups.
    group = placement_group([{"gpu_like": 1}, {"CPU": 0.5}], strategy="SPREAD", name="dashboard-demo")
    assert group.wait(30)
    page.goto(f"{dash.url}/placement-groups")
    expect(page.locator("tr", has_text="dashboard-demo")).to_contain_text("CREATED")
    shot("placement-groups")
    remove_placement_group(group)

    # The overview, once the head's ring buffer holds a few samples for every node.
    page.goto(f"{dash.url}/")
    expect(page.locator(".plot").first.locator(".legend span")).to_have_count(3)
    expect(page.locator(".card", has_text="Nodes")).to_contain_text("3 alive")
    shot("overview", full_page=True)

    # Log out: the session is over for this browser, pages and APIs answer 401 again.
    page.click(".logout button")
    expect(page.locator("#token")).to_be_visible()
    assert page.request.get(f"{dash.url}/api/state/nodes").status == 401
    assert page.request.get(f"{dash.url}/tree").status == 401
    assert not any(dash.token in url for url in urls), "the token appeared in a URL"
    assert not errors, errors
    context.close()
    actorlib.kill(counter)
