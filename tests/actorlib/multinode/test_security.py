"""Security on a CLI-started cluster (head 127.0.0.1, node 127.0.0.2), from the outside:

- every socket any process of the cluster listens on (found in the process table, not from a
  list) refuses a peer without the token: our handshake refuses a wrong proof, HTTP answers 401;
- a captured handshake replayed at the head, or at a client, fails; a reflected nonce fails;
- token files are 0600 (directories 0700, sockets 0600), and after real work (tasks, actors, a
  job, logins, failed attempts) no log, file, command line, process environment or CLI output
  holds the token;
- HTTP listens on loopback by default; browser-origin state changes are refused.

docs/security.md states the threat model these check.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import msgspec
import psutil
import pytest
import trio
from httpx_ws import WebSocketUpgradeError, connect_ws

import actorlib
from actorlib import _core, _wire
from actorlib._wire import ClusterInfoRequest, CoreMessage, HeadMessage
from actorlib._http._client import RetryingTransport
from actorlib._wire._messages import PROTOCOL_VERSION, Auth, Handshake, Hello, Refused, Welcome
from actorlib.job_submission import JobSubmissionClient

from ...fuzzcount import count
from ..integration.conftest import poll, processes_mentioning, wait_gone
from .conftest import MultiNode

pytestmark = pytest.mark.slow
WAIT = 30.0


@actorlib.remote
def square(x: int) -> int:
    return x * x


@actorlib.remote
def fails() -> None:
    raise ValueError("on purpose")


@actorlib.remote
class Keeper:
    def pid(self) -> int:
        return os.getpid()


@pytest.fixture(scope="module")
def cluster():
    multi = MultiNode([{"ip": "127.0.0.2", "cpus": 2}])
    session = Path(multi.token_file).parent
    multi.session = session
    multi.token = (session / "token").read_text().strip()
    multi.metrics_token = (session / "metrics_token").read_text().strip()
    multi.url = json.loads((session / "head.json").read_text())["dashboard"]
    with multi.connected():
        work(multi)
        yield multi


def work(multi: MultiNode) -> None:
    """What a cluster's token could leak through: tasks, an actor, errors, a job, logins, refusals."""
    assert actorlib.get([square.remote(i) for i in range(20)], timeout=60) == [i * i for i in range(20)]
    with pytest.raises(ValueError):
        actorlib.get(fails.remote(), timeout=60)
    multi.keeper = Keeper.remote()
    actorlib.get(multi.keeper.pid.remote(), timeout=60)
    client = JobSubmissionClient(multi.url, token=multi.token)
    try:
        sid = client.submit_job(entrypoint=f"{sys.executable} -c \"import os, sys; print(sorted(os.environ.items())); print(sys.argv)\"")
        poll(lambda: client.get_job_status(sid) in ("SUCCEEDED", "FAILED"), timeout=60)
        assert client.get_job_status(sid) == "SUCCEEDED"
        assert "ACTORLIB_TOKEN_FILE" in client.get_job_logs(sid)  # the entrypoint's environment is in the log
    finally:
        client.close()
    with httpx.Client(base_url=multi.url, timeout=30) as browser:
        browser.post("/login", data={"token": "not-" + multi.token[4:]}, headers={"origin": multi.url})
        assert browser.post("/login", data={"token": multi.token}, headers={"origin": multi.url}).status_code == 303
        assert browser.get("/api/state/nodes").status_code == 200
    env = {**multi.env, "ACTORLIB_TOKEN_FILE": multi.token_file}
    assert "2 healthy" in multi.cli("status", "--address", multi.address, env=env).stdout
    refused = multi.cli("status", "--address", multi.address, check=False, env={**multi.env, "ACTORLIB_TOKEN": "0" * 64})
    assert refused.returncode != 0 and "invalid cluster token" in refused.stderr, refused.stderr
    multi.cli("job", "list", "--address", multi.url, env=env)


# ---- every socket ----------------------------------------------------------------------------


def listening(multi: MultiNode) -> tuple[list[tuple[str, int, int]], list[str]]:
    """(ip, port, pid) of every TCP listener of the cluster's processes and this driver's core
    server, and every Unix socket file of its sessions."""
    pids = set(processes_mentioning(multi.tmp))
    tcp = []
    for pid in pids:
        try:
            tcp += [(c.laddr.ip, c.laddr.port, pid) for c in psutil.Process(pid).net_connections("inet") if c.status == "LISTEN"]
        except psutil.NoSuchProcess:
            pass
    driver = _core.current().identity.address
    tcp += [(*_wire.split_host_port(part), os.getpid()) for part in _wire.parts(driver) if not _wire.is_unix(part)]
    unix = [str(p) for p in Path(multi.tmp).glob("actorlib-*/session_*/sockets/*") if stat.S_ISSOCK(p.lstat().st_mode)]
    unix += [_wire.unix_path(part) for part in _wire.parts(driver) if _wire.is_unix(part)]
    return tcp, unix


async def refuses_a_wrong_proof(address: str) -> str:
    """Speak our handshake with a wrong proof; return why the server refused (no Welcome, then EOF)."""
    stream = await _wire.open_stream(address)
    async with stream:
        reader = _wire.FrameReader()
        frames: list[bytes] = []

        async def next_frame() -> bytes | None:
            with trio.fail_after(WAIT):
                while not frames:
                    try:
                        data = await stream.receive_some(4096)
                    except trio.BrokenResourceError:  # reset: we wrote after it had hung up
                        return None
                    if not data:
                        return None
                    frames.extend(reader.feed(data))
            return frames.pop(0)

        hello = msgspec.msgpack.decode(await next_frame(), type=Handshake)
        assert isinstance(hello, Hello), f"{address} does not start with our handshake"
        auth = Auth(version=PROTOCOL_VERSION, proof=b"\0" * 32, nonce=_wire._auth.nonce(), peer="stranger")
        await stream.send_all(_frame(msgspec.msgpack.encode(auth)))
        answer = await next_frame()
        assert answer is not None, f"{address} hung up without saying why"
        refused = msgspec.msgpack.decode(answer, type=Handshake)
        assert isinstance(refused, Refused), f"{address} answered a wrong proof with {refused}"
        try:
            await stream.send_all(_frame(msgspec.msgpack.encode(ClusterInfoRequest(req=1))))  # a request, regardless
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        assert await next_frame() is None, f"{address} kept talking to a stranger"
        return refused.reason


def _frame(payload: bytes) -> bytes:
    return len(payload).to_bytes(4, "big") + payload


def test_every_listening_socket_refuses_a_peer_without_the_token(cluster):
    tcp, unix = listening(cluster)
    http_port = int(cluster.url.rsplit(":", 1)[1])
    wire = [f"{ip}:{port}" for ip, port, _ in tcp if port != http_port]
    assert any(port == http_port for _, port, _ in tcp), "the HTTP server was not found among the listeners"
    assert len(wire) >= 10 and len(unix) >= 10, (tcp, unix)  # head, nodes, stores, workers, actor, driver
    for path in unix:
        assert stat.S_IMODE(os.lstat(path).st_mode) == 0o600, path

    async def check_all() -> list[str]:
        return [await refuses_a_wrong_proof(address) for address in wire + [_wire.unix_address(p) for p in unix]]

    reasons = trio.run(check_all)
    assert all("invalid cluster token" in reason for reason in reasons), reasons
    count("sockets refusing a wrong proof", "TCP", len(wire))
    count("sockets refusing a wrong proof", "Unix", len(unix))
    with httpx.Client(base_url=cluster.url, timeout=30) as anonymous:
        for path in ("/api/version", "/api/jobs/", "/", "/metrics", "/api/state/nodes", "/api/watch/nodes"):
            assert anonymous.get(path).status_code == 401, path
        assert anonymous.post("/api/jobs/", json={"entrypoint": "touch /tmp/pwned"}).status_code == 401
    with pytest.raises(WebSocketUpgradeError) as refused, connect_ws(f"{cluster.url}/api/jobs/x/logs/tail", httpx.Client()):
        pass
    assert refused.value.response.status_code == 401


def test_a_node_with_the_wrong_token_cannot_join(cluster, tmp_path):
    wrong = tmp_path / "token"
    wrong.write_text("0" * 64)
    wrong.chmod(0o600)
    before = set(processes_mentioning(cluster.tmp))
    result = cluster.cli(
        "start", "--address", cluster.address, "--token-file", str(wrong), "--node-ip-address", "127.0.0.4", check=False
    )
    said = result.stdout + result.stderr  # at once and saying why, not "could not reach the head" after its grace
    assert result.returncode != 0 and "does not accept this node's token" in said and "invalid cluster token" in said, said
    assert "127.0.0.4" not in cluster.node_ids()
    assert wait_gone(set(processes_mentioning(cluster.tmp)) - before) == []


def test_a_driver_with_the_wrong_token_is_refused_and_told_why(cluster):
    env = {**cluster.env, "ACTORLIB_TOKEN": "0" * 64}
    before = set(processes_mentioning(cluster.tmp))
    result = subprocess.run(
        [sys.executable, "-c", f"import actorlib; actorlib.init(address={cluster.address!r})"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode != 0, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ConnectionError: the cluster at") and "refused this driver" in last and "invalid cluster token" in last, last
    assert set(processes_mentioning(cluster.tmp)) <= before  # it started nothing on the cluster
    count("peers with the wrong token refused", "driver (init)")
    count("peers with the wrong token refused", "CLI (status)")


def test_websockets_need_the_cluster_token_itself(cluster):
    url = f"{cluster.url}/api/jobs/x/logs/tail"
    for who, token, status in (("wrong token", "0" * 64, 403), ("metrics token", cluster.metrics_token, 403)):
        with httpx.Client(headers={"Authorization": f"Bearer {token}"}) as client:
            with pytest.raises(WebSocketUpgradeError) as refused, connect_ws(url, client):
                pass
        assert refused.value.response.status_code == status, who
        count("peers with the wrong token refused", f"WebSocket ({who})")


# ---- replayed and reflected handshakes ----------------------------------------------------


async def _proxy(target: tuple[str, int], transcript: dict[str, bytearray], *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    """A loopback TCP proxy to ``target`` recording what each side sends (one connection)."""
    (listener,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
    async with listener:
        task_status.started(listener.socket.getsockname()[1])
        client = await listener.accept()
        server = await trio.open_tcp_stream(*target)
        async with client, server:

            async def pump(source: trio.SocketStream, sink: trio.SocketStream, record: bytearray) -> None:
                try:
                    while data := await source.receive_some(65536):
                        record += data
                        await sink.send_all(data)
                    await sink.send_eof()
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass

            async with trio.open_nursery() as nursery:
                nursery.start_soon(pump, client, server, transcript["client"])
                nursery.start_soon(pump, server, client, transcript["server"])


def _head_tcp(cluster) -> tuple[str, int]:
    return _wire.split_host_port(cluster.address)


def test_a_replayed_handshake_is_refused_by_the_server_and_by_the_client(cluster):
    transcript = {"client": bytearray(), "server": bytearray()}
    env = {**cluster.env, "ACTORLIB_TOKEN_FILE": cluster.token_file}

    async def capture() -> None:
        async with trio.open_nursery() as nursery:
            port = await nursery.start(_proxy, _head_tcp(cluster), transcript)
            status = await trio.run_process(
                [sys.executable, "-m", "actorlib", "status", "--address", f"127.0.0.1:{port}"], env=env, capture_stdout=True
            )
            assert b"healthy" in status.stdout  # a real client, through the proxy
            nursery.cancel_scope.cancel()

    trio.run(capture)
    sent, received = bytes(transcript["client"]), bytes(transcript["server"])
    assert sent and received
    for secret in (cluster.token, cluster.metrics_token):
        assert secret.encode() not in sent + received and bytes.fromhex(secret) not in sent + received  # never on the wire

    async def replay_to_the_head() -> list[object]:
        stream = await trio.open_tcp_stream(*_head_tcp(cluster))
        async with stream:
            await stream.send_all(sent)  # the real client's Auth (over the old nonce) and its request
            reader, got = _wire.FrameReader(), b""
            with trio.fail_after(WAIT):
                while data := await stream.receive_some(65536):
                    got += data
        decoder = msgspec.msgpack.Decoder(Handshake)
        return [decoder.decode(frame) for frame in reader.feed(got)]

    answers = trio.run(replay_to_the_head)
    assert [type(a) for a in answers] == [Hello, Refused]  # a fresh challenge, the replay refused, nothing else
    assert answers[0].nonce not in sent and "invalid cluster token" in answers[1].reason

    async def replay_to_a_client() -> None:
        (listener,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
        async with listener, trio.open_nursery() as nursery:

            async def fake_head() -> None:
                stream = await listener.accept()
                async with stream:
                    await stream.send_all(received)  # the real head's Hello, Welcome and answer
                    await trio.sleep_forever()

            nursery.start_soon(fake_head)
            port = listener.socket.getsockname()[1]
            with pytest.raises(_wire.AuthenticationError, match="could not prove it holds the cluster token"):
                await _wire.connect(nursery, f"127.0.0.1:{port}", cluster.token, HeadMessage, name="careful")
            nursery.cancel_scope.cancel()

    trio.run(replay_to_a_client)


def test_a_reflected_nonce_is_refused_and_no_proof_is_given_to_a_stranger(cluster):
    decoder = msgspec.msgpack.Decoder(Handshake)

    async def hello(stream: trio.SocketStream, reader: _wire.FrameReader) -> Hello:
        with trio.fail_after(WAIT):
            while not (frames := reader.feed(await stream.receive_some(4096))):
                pass
        return decoder.decode(frames[0])

    async def rest(stream: trio.SocketStream, reader: _wire.FrameReader) -> list[object]:
        got = []
        with trio.fail_after(WAIT):
            while data := await stream.receive_some(4096):
                got += [decoder.decode(frame) for frame in reader.feed(data)]
        return got

    async def reflect() -> None:
        head = _head_tcp(cluster)
        first, second = await trio.open_tcp_stream(*head), await trio.open_tcp_stream(*head)
        async with first, second:
            r1, r2 = _wire.FrameReader(), _wire.FrameReader()
            n1, n2 = (await hello(first, r1)).nonce, (await hello(second, r2)).nonce
            assert n1 != n2
            # The server's own challenge as our proof and our nonce; and the first challenge on the second connection.
            await first.send_all(_frame(msgspec.msgpack.encode(Auth(version=PROTOCOL_VERSION, proof=n1, nonce=n1, peer="mirror"))))
            await second.send_all(_frame(msgspec.msgpack.encode(Auth(version=PROTOCOL_VERSION, proof=n1, nonce=n1, peer="mirror"))))
            for answers in (await rest(first, r1), await rest(second, r2)):
                assert [type(a) for a in answers] == [Refused]  # no Welcome: no proof over a nonce we chose

    trio.run(reflect)

    async def reflecting_server() -> None:
        """A fake server that hands a client's own proof back as its Welcome."""
        (listener,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
        async with listener, trio.open_nursery() as nursery:

            async def mirror() -> None:
                stream = await listener.accept()
                async with stream:
                    reader = _wire.FrameReader()
                    await stream.send_all(_frame(msgspec.msgpack.encode(Hello(version=PROTOCOL_VERSION, nonce=_wire._auth.nonce()))))
                    auth = decoder.decode((await _frames(stream, reader))[0])
                    await stream.send_all(_frame(msgspec.msgpack.encode(Welcome(proof=auth.proof))))
                    await trio.sleep_forever()

            nursery.start_soon(mirror)
            with pytest.raises(_wire.AuthenticationError, match="could not prove"):
                await _wire.connect(nursery, f"127.0.0.1:{listener.socket.getsockname()[1]}", cluster.token, CoreMessage, name="c")
            nursery.cancel_scope.cancel()

    trio.run(reflecting_server)


async def _frames(stream: trio.SocketStream, reader: _wire.FrameReader) -> list[bytes]:
    with trio.fail_after(WAIT):
        while not (frames := reader.feed(await stream.receive_some(4096))):
            pass
    return frames


# ---- the token at rest ----------------------------------------------------------------------


def test_token_files_are_private_and_the_token_is_never_logged_or_shown(cluster):
    tmp = Path(cluster.tmp)
    secrets = [cluster.token.encode(), cluster.metrics_token.encode()]
    token_files = [p for p in tmp.rglob("*") if "token" in p.name and p.is_file()]
    assert {p.name for p in token_files} >= {"token", "metrics_token"}
    for path in token_files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for directory in [*tmp.glob("actorlib-*"), *tmp.glob("actorlib-*/session_2*")]:
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    # Every other file the cluster wrote: logs (workers', the job's, the head's), ready files, the state database.
    files = [p for p in tmp.rglob("*") if p.is_file() and not p.is_symlink() and p not in token_files]
    assert any(p.name.startswith("job-driver-") for p in files) and any(p.suffix == ".err" for p in files)
    for path in files:
        data = path.read_bytes()
        assert not any(secret in data for secret in secrets), f"the token is in {path}"
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    assert not any(secret.decode() in ps for secret in secrets)
    for pid in processes_mentioning(cluster.tmp):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except (FileNotFoundError, ProcessLookupError):
            continue
        assert not any(secret in environ for secret in secrets), f"the token is in the environment of {pid}"
    for result in cluster.outputs:
        assert not any(secret.decode() in result.stdout + result.stderr for secret in secrets), result.args


# ---- HTTP ------------------------------------------------------------------------------------


def test_http_listens_on_loopback_by_default(cluster):
    http_port = int(cluster.url.rsplit(":", 1)[1])
    tcp, _ = listening(cluster)
    (ip,) = [ip for ip, port, _ in tcp if port == http_port]
    assert ip == "127.0.0.1"
    help_text = " ".join(cluster.cli("start", "--help").stdout.split())
    assert "--dashboard-host TEXT Where the head's HTTP API (jobs) listens; keep it loopback unless you must. [default: 127.0.0.1]" in help_text


STATE_CHANGES = [
    ("POST", "/api/jobs/", {"json": {"entrypoint": "touch /tmp/pwned-by-origin"}}),
    ("PUT", "/api/packages/gcs/_ray_pkg_00000000000000aa.zip", {"content": b"PK\x05\x06" + b"\0" * 18}),
    ("POST", "/api/jobs/raysubmit_nonexistent/stop", {}),
    ("DELETE", "/api/jobs/raysubmit_nonexistent", {}),
    ("POST", "/logout", {}),
]


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1:1", "https://127.0.0.1"])
def test_a_foreign_browser_origin_cannot_change_anything(cluster, origin):
    # Every state change here is refused, so sending one again is harmless: when the server
    # closed a reused keep-alive connection just then (its 5 s idle timeout, which a loaded
    # machine can stretch), the client retries as a browser would instead of failing the test.
    def client() -> httpx.Client:
        resend = RetryingTransport(methods=frozenset({"GET", "POST", "PUT", "DELETE", "PATCH"}))
        return httpx.Client(base_url=cluster.url, timeout=30, transport=resend)

    with client() as bearer, client() as browser:
        bearer.headers["Authorization"] = f"Bearer {cluster.token}"
        before = bearer.get("/api/jobs/").json()
        assert browser.post("/login", data={"token": cluster.token}, headers={"origin": origin}).status_code == 403
        assert browser.post("/login", data={"token": cluster.token}, headers={"origin": cluster.url}).status_code == 303
        for method, path, body in STATE_CHANGES:
            for client in (bearer, browser):
                reply = client.request(method, path, headers={"origin": origin}, **body)
                assert reply.status_code == 403 and "cross-origin" in reply.text, (method, path, reply.text)
            assert browser.request(method, path, **body).status_code == 403  # a cookie without any Origin: refused too
        assert browser.get("/api/state/nodes").status_code == 200  # the refused logout ended nothing
        assert bearer.get("/api/jobs/").json() == before
        assert bearer.get("/api/packages/gcs/_ray_pkg_00000000000000aa.zip").status_code == 404
        with pytest.raises(WebSocketUpgradeError) as refused:
            with connect_ws(f"{cluster.url}/api/jobs/x/logs/tail", bearer, headers={"origin": origin}):
                pass
        assert refused.value.response.status_code == 403
    assert not Path("/tmp/pwned-by-origin").exists()
