"""Custom serialization: send a type pickle refuses, as in Ray's ``ray.util.register_serializer``.

Run: python examples/serialization.py
"""

import threading

import actorlib
from actorlib.exceptions import SerializationError
from actorlib.util import deregister_serializer, register_serializer


class Client:
    """A client holding a lock (and in real life a socket): pickle refuses it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.lock = threading.Lock()


@actorlib.remote
def fetch(client: Client, key: str) -> str:
    with client.lock:  # a fresh client, rebuilt here from its URL
        return f"{key} from {client.url}"


def main() -> None:
    actorlib.init(num_cpus=2)
    client = Client("db://127.0.0.1:5432")
    try:
        fetch.remote(client, "user:1")
    except SerializationError as exc:
        print("without a serializer:", exc)

    register_serializer(Client, serializer=lambda c: c.url, deserializer=Client)
    print("with one:", actorlib.get(fetch.remote(client, "user:1")))
    deregister_serializer(Client)
    actorlib.shutdown()
    print("serialization ok")


if __name__ == "__main__":
    main()
