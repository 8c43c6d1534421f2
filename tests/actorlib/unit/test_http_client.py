"""Our HTTP clients send an idempotent request again when the server hung up on it, never a POST."""

from __future__ import annotations

import socket
import threading

import httpx
import pytest

from actorlib._http._client import RetryingTransport


class HangsUpOnce:
    """A loopback HTTP server that reads the first request and closes without answering, then
    answers every later one with 200 and the request's method."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.requests: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn:
                head = _whole_request(conn)  # all of it: unread bytes would make the close a reset
                self.requests.append(head)
                if len(self.requests) == 1:
                    continue  # closed without a response
                method = head.split(b" ", 1)[0]
                conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\nconnection: close\r\n\r\n%s" % (len(method), method))

    def close(self) -> None:
        """Stop serving, and the thread with it (closing alone would leave it in accept())."""
        self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() with an OSError
        self.thread.join(30)
        self.listener.close()
        assert not self.thread.is_alive(), "the test server's thread did not end"


def _whole_request(conn: socket.socket) -> bytes:
    """One request, head and body (content-length), as received."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


@pytest.fixture
def server():
    server = HangsUpOnce()
    yield server
    server.close()


def test_a_get_the_server_hung_up_on_is_sent_again(server):
    with httpx.Client(transport=RetryingTransport()) as client:
        reply = client.get(f"{server.url}/x")
    assert reply.status_code == 200 and reply.text == "GET"
    assert len(server.requests) == 2


def test_a_post_the_server_hung_up_on_is_not_sent_again(server):
    with httpx.Client(transport=RetryingTransport()) as client, pytest.raises(httpx.RemoteProtocolError):
        client.post(f"{server.url}/jobs", json={"entrypoint": "true"})
    assert len(server.requests) == 1


def test_without_it_the_get_fails(server):
    with httpx.Client() as client, pytest.raises(httpx.RemoteProtocolError):
        client.get(f"{server.url}/x")
