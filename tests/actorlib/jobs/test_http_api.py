"""The Jobs REST API over a real HTTP server on loopback, with real entrypoint processes."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import httpx
import pytest
import trio
from httpx_ws import WebSocketUpgradeError, aconnect_ws

from .conftest import MAX_PACKAGE, Api, gone, wait_gone, zip_of

PY = sys.executable


async def test_version_says_which_ray_jobs_api_it_speaks(api: Api) -> None:
    version = (await api.client.get("/api/version")).json()
    assert version["version"] == "4" and int(version["version"]) > 0
    assert tuple(int(p) for p in version["ray_version"].split(".")[:2]) >= (2, 8)


async def test_a_job_that_succeeds(api: Api) -> None:
    body = {"entrypoint": f"{PY} -c \"print('hello job')\"", "submission_id": "ok-1", "metadata": {"owner": "alice"}}
    reply = await api.client.post("/api/jobs/", json=body)
    assert reply.status_code == 200 and reply.json() == {"job_id": "ok-1", "submission_id": "ok-1"}
    job = await api.wait_status("ok-1", "SUCCEEDED", "FAILED")
    assert job["status"] == "SUCCEEDED" and job["message"] == "Job finished successfully."
    assert job["driver_exit_code"] == 0 and job["error_type"] is None
    assert job["metadata"] == {"owner": "alice"} and job["type"] == "SUBMISSION"
    assert isinstance(job["start_time"], int) and job["end_time"] >= job["start_time"]
    logs = (await api.client.get("/api/jobs/ok-1/logs")).json()["logs"]
    assert "Running entrypoint for job ok-1" in logs and logs.endswith("hello job\n")
    listed = (await api.client.get("/api/jobs/")).json()
    assert [j["submission_id"] for j in listed] == ["ok-1"]


async def test_a_job_that_fails_says_its_exit_code_and_the_tail_of_its_log(api: Api) -> None:
    code = "import sys; print('about to fail'); sys.exit(3)"
    sid = (await api.client.post("/api/jobs/", json={"entrypoint": f'{PY} -c "{code}"'})).json()["submission_id"]
    assert sid.startswith("raysubmit_") and len(sid) == len("raysubmit_") + 16
    job = await api.wait_status(sid, "SUCCEEDED", "FAILED")
    assert job["status"] == "FAILED" and job["driver_exit_code"] == 3
    assert job["error_type"] == "JOB_ENTRYPOINT_COMMAND_ERROR"
    assert job["message"].startswith("Job entrypoint command failed with exit code 3, last available logs")
    assert "about to fail" in job["message"]


async def test_a_stopped_job_loses_its_whole_process_tree(api: Api, tmp_path) -> None:
    pids = tmp_path / "pids"
    # A shell with a background child and a foreground child, all three ignoring nothing.
    script = f"sleep 60 & echo $! >> {pids}; echo $$ >> {pids}; sleep 60"
    sid = (await api.client.post("/api/jobs/", json={"entrypoint": script})).json()["submission_id"]
    await api.wait_status(sid, "RUNNING")
    with trio.fail_after(10):
        while not pids.exists() or len(pids.read_text().split()) < 2:
            await trio.sleep(0.02)
    tree = [int(p) for p in pids.read_text().split()]
    assert (await api.client.post(f"/api/jobs/{sid}/stop")).json() == {"stopped": True}
    job = await api.wait_status(sid, "STOPPED", "FAILED", "SUCCEEDED")
    assert job["status"] == "STOPPED" and job["message"] == "Job was intentionally stopped."
    assert job["driver_exit_code"] is None
    await wait_gone(tree)
    assert (await api.client.post(f"/api/jobs/{sid}/stop")).json() == {"stopped": False}


async def test_a_job_that_ignores_sigterm_is_killed_after_the_stop_timeout(api: Api, tmp_path) -> None:
    ready = tmp_path / "ready"
    code = f"import signal, time, pathlib; signal.signal(signal.SIGTERM, signal.SIG_IGN); pathlib.Path({str(ready)!r}).write_text('x'); time.sleep(60)"
    sid = (await api.client.post("/api/jobs/", json={"entrypoint": f'{PY} -c "{code}"'})).json()["submission_id"]
    with trio.fail_after(10):
        while not ready.exists():
            await trio.sleep(0.02)
    pid = api.manager.get(sid).driver_pid
    await api.client.post(f"/api/jobs/{sid}/stop")
    job = await api.wait_status(sid, "STOPPED", "FAILED", "SUCCEEDED")
    assert job["status"] == "STOPPED"
    await wait_gone([pid])


async def test_logs_follow_over_a_websocket_until_the_job_ends(api: Api) -> None:
    code = "import time\nfor i in range(3):\n    print('tick', i, flush=True); time.sleep(0.2)"
    sid = (await api.client.post("/api/jobs/", json={"entrypoint": f"{PY} -c {shlex.quote(code)}"})).json()["submission_id"]
    chunks = []
    async with aconnect_ws(f"{api.url}/api/jobs/{sid}/logs/tail", api.client) as ws:
        from httpx_ws import WebSocketDisconnect

        with pytest.raises(WebSocketDisconnect) as closed:
            while True:
                chunks.append(await ws.receive_text())
    assert closed.value.code == 1000
    text = "".join(chunks)
    assert "tick 0\ntick 1\ntick 2\n" in text and "Running entrypoint" in text
    assert (await api.client.get(f"/api/jobs/{sid}")).json()["status"] == "SUCCEEDED"


async def test_a_deleted_job_is_gone_and_a_running_one_cannot_be_deleted(api: Api) -> None:
    sid = (await api.client.post("/api/jobs/", json={"entrypoint": "sleep 30"})).json()["submission_id"]
    await api.wait_status(sid, "RUNNING")
    refused = await api.client.delete(f"/api/jobs/{sid}")
    assert refused.status_code == 400 and "non-terminal state RUNNING" in refused.text
    await api.client.post(f"/api/jobs/{sid}/stop")
    await api.wait_status(sid, "STOPPED")
    assert (await api.client.delete(f"/api/jobs/{sid}")).json() == {"deleted": True}
    missing = await api.client.get(f"/api/jobs/{sid}")
    assert missing.status_code == 404 and missing.text == f"Job {sid} does not exist"
    assert (await api.client.get("/api/jobs/")).json() == []


async def test_working_dir_and_env_vars_from_an_uploaded_package(api: Api) -> None:
    package = zip_of({"main.py": b"import helper, os\nprint(helper.VALUE, os.environ['GREETING'], open('data.txt').read())\n",
                      "helper.py": b"VALUE = 'from helper'\n", "data.txt": b"data file"})  # fmt: skip
    name = "_ray_pkg_0123456789abcdef.zip"
    assert (await api.client.get(f"/api/packages/gcs/{name}")).status_code == 404
    assert (await api.client.put(f"/api/packages/gcs/{name}", content=package)).status_code == 200
    assert (await api.client.get(f"/api/packages/gcs/{name}")).status_code == 200
    body = {"entrypoint": f"{PY} main.py", "runtime_env": {"working_dir": f"gcs://{name}", "env_vars": {"GREETING": "hi"}}}
    sid = (await api.client.post("/api/jobs/", json=body)).json()["submission_id"]
    job = await api.wait_status(sid, "SUCCEEDED", "FAILED")
    assert job["status"] == "SUCCEEDED", job["message"]
    assert job["runtime_env"] == body["runtime_env"]
    assert (await api.client.get(f"/api/jobs/{sid}/logs")).json()["logs"].endswith("from helper hi data file\n")


# ---- security ------------------------------------------------------------------------------------


@pytest.mark.parametrize("method,path", [("GET", "/api/version"), ("GET", "/api/jobs/"), ("POST", "/api/jobs/"),
                                         ("PUT", "/api/packages/gcs/_ray_pkg_00.zip"), ("POST", "/api/jobs/x/stop"),
                                         ("DELETE", "/api/jobs/x"), ("GET", "/nope")])  # fmt: skip
async def test_every_call_needs_the_token(api: Api, method: str, path: str) -> None:
    async with httpx.AsyncClient(base_url=api.url) as anonymous:
        missing = await anonymous.request(method, path, json={"entrypoint": "touch /tmp/pwned"})
        wrong = await anonymous.request(method, path, headers={"Authorization": "Bearer nope"}, json={"entrypoint": "x"})
    assert missing.status_code == 401 and missing.text == "Unauthorized: Missing authentication token"
    assert wrong.status_code == 403
    assert api.manager.list_jobs() == []


async def test_the_websocket_upgrade_needs_the_token_too(api: Api) -> None:
    await api.client.post("/api/jobs/", json={"entrypoint": "true", "submission_id": "w"})
    for headers, status in (({}, 401), ({"Authorization": "Bearer nope"}, 403)):
        async with httpx.AsyncClient(base_url=api.url, headers=headers) as other:
            with pytest.raises(WebSocketUpgradeError) as refused:
                async with aconnect_ws(f"{api.url}/api/jobs/w/logs/tail", other):
                    pass
        assert refused.value.response.status_code == status


async def test_a_foreign_browser_origin_cannot_change_state(api: Api) -> None:
    evil = {"Origin": "http://evil.example"}
    refused = await api.client.post("/api/jobs/", json={"entrypoint": "touch /tmp/pwned"}, headers=evil)
    assert refused.status_code == 403 and "cross-origin" in refused.text
    assert (await api.client.get("/api/jobs/", headers=evil)).status_code == 200  # reading is harmless
    own = {"Origin": api.url}
    assert (await api.client.post("/api/jobs/", json={"entrypoint": "true"}, headers=own)).status_code == 200
    with pytest.raises(WebSocketUpgradeError):
        async with aconnect_ws(f"{api.url}/api/jobs/x/logs/tail", api.client, headers=evil):
            pass


# ---- bad input: a clear 4xx, never a 500 ---------------------------------------------------------


@pytest.mark.parametrize(
    "body,expected",
    [
        (b"{not json", "not JSON"),
        (b'{"entrypoint": 3}', "Expected `str`, got `int` - at `$.entrypoint`"),
        (b"[]", "Expected `object`"),
        (b'{"metadata": {}}', "missing required field `entrypoint`"),
        (b'{"entrypoint": "   "}', "entrypoint must be a non-empty command"),
        (b'{"entrypoint": "true", "runtime_env": {"pip": ["numpy"]}}', "runtime_env field 'pip' is not supported"),
        (b'{"entrypoint": "true", "runtime_env": {"conda": "x"}}', "'conda'"),
        (b'{"entrypoint": "true", "runtime_env": {"working_dir": "/home/me/project"}}', "must be a package URI"),
        (b'{"entrypoint": "true", "runtime_env": {"working_dir": "s3://b/k.zip"}}', "unsupported package URI"),
        (b'{"entrypoint": "true", "runtime_env": {"working_dir": "gcs://../../etc/passwd"}}', "invalid package name"),
        (b'{"entrypoint": "true", "runtime_env": {"working_dir": "gcs://_ray_pkg_ffffffffffffffff.zip"}}', "does not exist"),
        (b'{"entrypoint": "true", "runtime_env": {"env_vars": {"A": 1}}}', "env_vars"),
        (b'{"entrypoint": "true", "metadata": {"a": 1}}', "Expected `str`"),
        (b'{"entrypoint": "true", "submission_id": "../../x"}', "invalid submission_id"),
        (b'{"entrypoint": "true", "entrypoint_num_cpus": -1}', "finite non-negative"),
        (b'{"entrypoint": "true", "entrypoint_label_selector": {"zone": "a"}}', "entrypoint_label_selector is not supported"),
    ],
)
async def test_bad_submissions_are_refused_with_a_reason(api: Api, body: bytes, expected: str) -> None:
    reply = await api.client.post("/api/jobs/", content=body, headers={"Content-Type": "application/json"})
    assert reply.status_code == 400, reply.text
    assert expected in reply.text
    assert api.manager.list_jobs() == []


async def test_a_duplicate_submission_id_is_refused(api: Api) -> None:
    assert (await api.client.post("/api/jobs/", json={"entrypoint": "true", "submission_id": "dup"})).status_code == 200
    again = await api.client.post("/api/jobs/", json={"entrypoint": "true", "submission_id": "dup"})
    assert again.status_code == 400 and "Job with submission_id dup already exists" in again.text


@pytest.mark.parametrize("method,path", [("GET", "/api/jobs/nope"), ("GET", "/api/jobs/nope/logs"),
                                         ("POST", "/api/jobs/nope/stop"), ("DELETE", "/api/jobs/nope")])  # fmt: skip
async def test_unknown_job_ids_are_404(api: Api, method: str, path: str) -> None:
    reply = await api.client.request(method, path)
    assert reply.status_code == 404 and reply.text == "Job nope does not exist"


async def test_tailing_an_unknown_job_is_404(api: Api) -> None:
    with pytest.raises(WebSocketUpgradeError) as refused:
        async with aconnect_ws(f"{api.url}/api/jobs/nope/logs/tail", api.client):
            pass
    assert refused.value.response.status_code == 404


async def test_an_oversized_package_is_413_and_not_stored(api: Api) -> None:
    name = "_ray_pkg_1111111111111111.zip"
    big = zip_of({"big.bin": bytes(range(256)) * (MAX_PACKAGE // 200)})
    assert len(big) > MAX_PACKAGE
    reply = await api.client.put(f"/api/packages/gcs/{name}", content=big)
    assert reply.status_code == 413 and "limit" in reply.text

    async def chunks():  # no Content-Length: the limit is enforced while reading
        for _ in range(MAX_PACKAGE // 1024 + 2):
            yield b"x" * 1024

    streamed = await api.client.put(f"/api/packages/gcs/{name}", content=chunks())
    assert streamed.status_code == 413
    assert (await api.client.get(f"/api/packages/gcs/{name}")).status_code == 404


@pytest.mark.parametrize(
    "members,symlinks,expected",
    [
        ({"../escape.py": b"x"}, {}, "outside the package directory"),
        ({"a/../../escape.py": b"x"}, {}, "outside the package directory"),
        ({"/etc/cron.d/evil": b"x"}, {}, "outside the package directory"),
        ({"ok.py": b"x"}, {"link": "/etc/passwd"}, "symbolic link"),
        ({"ok.py": b"x", "dup": b"1"}, {"dup": "x"}, "twice"),
    ],
)
async def test_hostile_zip_members_are_refused_and_nothing_is_written(api: Api, tmp_path, members, symlinks, expected) -> None:
    name = "_ray_pkg_2222222222222222.zip"
    # The node's workers come up in the background and add their sockets and
    # logs meanwhile; everything else under the test root must stay as it was.
    runtime = (api.session / "sockets", api.session / "logs")

    def files() -> set[Path]:
        return {p for p in tmp_path.parent.rglob("*") if not any(p.is_relative_to(d) for d in runtime)}

    before = files()
    reply = await api.client.put(f"/api/packages/gcs/{name}", content=zip_of(members, symlinks=symlinks))
    assert reply.status_code == 400 and expected in reply.text
    assert (await api.client.get(f"/api/packages/gcs/{name}")).status_code == 404
    assert files() == before
    assert not Path("/etc/cron.d/evil").exists()


async def test_not_a_zip_is_refused(api: Api) -> None:
    reply = await api.client.put("/api/packages/gcs/_ray_pkg_3333333333333333.zip", content=b"PK\x03\x04 garbage")
    assert reply.status_code == 400 and "not a valid zip file" in reply.text


@pytest.mark.parametrize("path,status", [
    ("/api/packages/gcs/..%2F..%2Fetc%2Fpasswd", 404),  # decoded, the name has slashes: no such route
    ("/api/packages/gcs/passwd", 400),
    ("/api/packages/gcs/_ray_pkg_..zip", 400),
    ("/api/packages/s3/_ray_pkg_4444444444444444.zip", 400),
    ("/api/packages/gcs/.._ray_pkg_4.zip", 400),
])  # fmt: skip
async def test_package_names_cannot_traverse(api: Api, path: str, status: int) -> None:
    reply = await api.client.put(path, content=zip_of({"a.py": b"x"}))
    assert reply.status_code == status, reply.text
    assert not list((api.session / "packages").glob("*")) if (api.session / "packages").exists() else True
    assert not (api.session.parent / "etc").exists()


async def test_a_wrong_method_is_405(api: Api) -> None:
    assert (await api.client.patch("/api/jobs/")).status_code == 405


async def test_py_modules_are_importable_by_the_entrypoint(api: Api) -> None:
    module = zip_of({"greeting/__init__.py": b"WORD = 'from a py_module'\n"})
    name = "_ray_pkg_5555555555555555.zip"
    assert (await api.client.put(f"/api/packages/gcs/{name}", content=module)).status_code == 200
    body = {"entrypoint": f"{PY} -c 'import greeting; print(greeting.WORD)'", "runtime_env": {"py_modules": [f"gcs://{name}"]}}
    sid = (await api.client.post("/api/jobs/", json=body)).json()["submission_id"]
    job = await api.wait_status(sid, "SUCCEEDED", "FAILED")
    assert job["status"] == "SUCCEEDED", job["message"]
    assert (await api.client.get(f"/api/jobs/{sid}/logs")).json()["logs"].endswith("from a py_module\n")


async def test_entrypoint_resources_no_node_could_ever_have_fail_the_job_at_once_naming_them(api: Api) -> None:
    body = {"entrypoint": "true", "entrypoint_num_gpus": 1, "entrypoint_num_cpus": 1, "entrypoint_resources": {"tpu": 2}}
    sid = (await api.client.post("/api/jobs/", json=body)).json()["submission_id"]
    job = await api.wait_status(sid, "FAILED", "SUCCEEDED")
    assert job["status"] == "FAILED" and job["error_type"] == "JOB_SUPERVISOR_ACTOR_UNSCHEDULABLE"
    assert "GPU=1 (the most any node has: 0), tpu=2" in job["message"] and "CPU=1" not in job["message"]
    assert job["entrypoint_num_gpus"] == 1 and job["entrypoint_resources"] == {"tpu": 2} and job["driver_node_id"] is None
    assert "tpu=2" in (await api.client.get(f"/api/jobs/{sid}/logs")).json()["logs"]  # the log says why, too


def _cpus_free(api: Api) -> float:
    (node,) = api.manager.nodes.views()
    return node.available["CPU"]


async def test_a_job_waits_pending_until_the_cpus_it_asks_for_are_free_and_holds_them_while_it_runs(api: Api, tmp_path) -> None:
    gate = tmp_path / "gate"
    hog = {"entrypoint": f"while [ ! -e {gate} ]; do sleep 0.02; done", "entrypoint_num_cpus": 2}
    first = (await api.client.post("/api/jobs/", json=hog)).json()["submission_id"]
    await api.wait_status(first, "RUNNING")
    assert _cpus_free(api) == 0  # the entrypoint holds its CPUs, like a lease
    second = (await api.client.post("/api/jobs/", json={"entrypoint": "echo second", "entrypoint_num_cpus": 1})).json()["submission_id"]
    with trio.fail_after(10):  # the manager looked, and it waits: it says for what
        while "waiting for CPU=1" not in (job := (await api.client.get(f"/api/jobs/{second}")).json())["message"]:
            await trio.sleep(0.02)
    assert job["status"] == "PENDING" and job["driver_node_id"] is None
    gate.touch()
    assert (await api.wait_status(first, "SUCCEEDED", "FAILED"))["status"] == "SUCCEEDED"
    done = await api.wait_status(second, "SUCCEEDED", "FAILED")
    assert done["status"] == "SUCCEEDED" and done["driver_node_id"] == api.manager.node_id
    with trio.fail_after(10):
        while _cpus_free(api) != 2:  # given back when each ended
            await trio.sleep(0.02)


async def test_a_job_stopped_while_it_waits_for_resources_never_starts(api: Api, tmp_path) -> None:
    gate = tmp_path / "gate"
    hog = (await api.client.post("/api/jobs/", json={"entrypoint": f"while [ ! -e {gate} ]; do sleep 0.02; done", "entrypoint_num_cpus": 2})).json()
    await api.wait_status(hog["submission_id"], "RUNNING")
    marker = tmp_path / "ran"
    waiting = (await api.client.post("/api/jobs/", json={"entrypoint": f"touch {marker}", "entrypoint_num_cpus": 2})).json()["submission_id"]
    assert (await api.client.post(f"/api/jobs/{waiting}/stop")).json() == {"stopped": True}
    assert (await api.wait_status(waiting, "STOPPED", "SUCCEEDED", "FAILED"))["status"] == "STOPPED"
    assert "stopped before it started" in (await api.client.get(f"/api/jobs/{waiting}/logs")).json()["logs"]
    gate.touch()
    await api.wait_status(hog["submission_id"], "SUCCEEDED")
    assert not marker.exists()


async def test_a_job_pending_longer_than_the_start_timeout_fails_as_in_ray(api: Api, tmp_path) -> None:
    gate = tmp_path / "gate"
    hog = (await api.client.post("/api/jobs/", json={"entrypoint": f"while [ ! -e {gate} ]; do sleep 0.02; done", "entrypoint_num_cpus": 2})).json()
    await api.wait_status(hog["submission_id"], "RUNNING")
    api.manager.start_timeout = 0.5
    late = (await api.client.post("/api/jobs/", json={"entrypoint": "true", "entrypoint_num_cpus": 1})).json()["submission_id"]
    job = await api.wait_status(late, "FAILED", "SUCCEEDED")
    assert job["error_type"] == "JOB_SUPERVISOR_ACTOR_START_TIMEOUT"
    assert "failed to start within 0.5 seconds" in job["message"] and "CPU=1" in job["message"]
    gate.touch()
    await api.wait_status(hog["submission_id"], "SUCCEEDED")


def _child(info, path: str):
    """The snapshot node at ``path`` (ids joined by /) under ``info``."""
    for part in path.split("/"):
        info = next(child for child in info.children if child.id == part)
    return info


async def test_a_crashed_job_manager_restarts_keeps_its_records_and_loses_no_entrypoint_or_report(api: Api, tmp_path) -> None:
    earlier = (await api.client.post("/api/jobs/", json={"entrypoint": "echo earlier"})).json()["submission_id"]
    await api.wait_status(earlier, "SUCCEEDED")
    gate = tmp_path / "gate"
    code = f"echo started; while [ ! -e {gate} ]; do sleep 0.02; done; echo released"
    sid = (await api.client.post("/api/jobs/", json={"entrypoint": code, "entrypoint_num_cpus": 2})).json()["submission_id"]
    await api.wait_status(sid, "RUNNING")
    pid = api.manager.get(sid).driver_pid
    queued = (await api.client.post("/api/jobs/", json={"entrypoint": "echo queued", "entrypoint_num_cpus": 1})).json()["submission_id"]
    with trio.fail_after(10):  # it waits for the CPUs the first one holds
        while "waiting for CPU=1" not in (await api.client.get(f"/api/jobs/{queued}")).json()["message"]:
            await trio.sleep(0.02)
    assert _child(api.root.snapshot(), "jobs/manager").restarts == 0
    api.state.failures = 1  # its next write fails: the one recording the end of the first job, below
    gate.touch()
    job = await api.wait_status(sid, "SUCCEEDED", "FAILED")
    manager = _child(api.root.snapshot(), "jobs/manager")
    assert manager.restarts == 1 and "disk I/O error" in manager.last_exit.reason  # it crashed, and came back
    assert job["status"] == "SUCCEEDED" and job["driver_exit_code"] == 0  # the node's report was handled again
    assert gone([pid])
    assert (await api.client.get(f"/api/jobs/{sid}/logs")).json()["logs"].endswith("started\nreleased\n")
    assert (await api.wait_status(queued, "SUCCEEDED", "FAILED"))["status"] == "SUCCEEDED"  # placed by the new incarnation
    assert (await api.client.get(f"/api/jobs/{earlier}")).json()["status"] == "SUCCEEDED"  # records kept
    after = (await api.client.post("/api/jobs/", json={"entrypoint": "echo after"})).json()["submission_id"]
    assert (await api.wait_status(after, "SUCCEEDED", "FAILED"))["status"] == "SUCCEEDED"


def _junk(rng, depth: int = 0):
    """A random JSON value (never a submit request with a string entrypoint)."""
    kinds = ["int", "float", "str", "bool", "null"] + (["list", "dict"] if depth < 3 else [])
    kind = rng.choice(kinds)
    if kind == "list":
        return [_junk(rng, depth + 1) for _ in range(rng.randrange(4))]
    if kind == "dict":
        keys = ["entrypoint", "runtime_env", "metadata", "submission_id", "working_dir", "env_vars", "py_modules",
                "entrypoint_num_cpus", "entrypoint_resources", "x" * rng.randrange(1, 5)]  # fmt: skip
        return {rng.choice(keys): _junk(rng, depth + 1) for _ in range(rng.randrange(5))}
    return {"int": rng.randrange(-(2**40), 2**40), "float": rng.random() * 1e300, "str": "é\x00" * rng.randrange(3),
            "bool": rng.random() < 0.5, "null": None}[kind]  # fmt: skip


async def test_random_junk_bodies_get_400_never_500(api: Api) -> None:
    import random

    rng = random.Random(12)
    for _ in range(300):
        body = _junk(rng)
        if isinstance(body, dict) and isinstance(body.get("entrypoint"), str):
            body["entrypoint"] = 0  # never run a random command
        reply = await api.client.post("/api/jobs/", json=body)
        assert reply.status_code == 400, (body, reply.status_code, reply.text)
    for raw in (b"\xff\xfe", b"", b"{" * 10000, b'{"entrypoint": "\\ud800"}'[:-2]):
        reply = await api.client.post("/api/jobs/", content=raw)
        assert reply.status_code == 400, (raw[:20], reply.text)
    assert api.manager.list_jobs() == []
