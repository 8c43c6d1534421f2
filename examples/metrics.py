"""Application metrics with Ray's API (``ray.util.metrics``): a Counter, a Gauge and a Histogram
recorded in tasks, an actor and the driver, read back from the head's ``GET /metrics``.

Each process keeps its metrics and reports them to its node (at most every 2 s, and once
more as it stops); ``/metrics`` shows them under their own names, with their tag keys plus
``node_id`` and ``node_ip`` as labels (docs/dashboard.md, "Application metrics").

Run it: python examples/metrics.py
"""

import random
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

import actorlib
from actorlib.util.metrics import Counter, Gauge, Histogram

# Defined at module level: a task or actor that uses them defines them again where it runs.
requests = Counter("shop_requests", description="Requests served", tag_keys=("route",))
latency = Histogram("shop_latency_seconds", description="Time to serve", boundaries=[0.01, 0.1, 1.0], tag_keys=("route",))


@actorlib.remote
def serve(route):
    seconds = random.uniform(0.001, 0.05)
    requests.inc(tags={"route": route})
    latency.observe(seconds, tags={"route": route})
    return route


@actorlib.remote
class Cart:
    def __init__(self):
        self.items = Gauge("shop_cart_items", description="Items in the cart", tag_keys=("cart",))
        self.items.set_default_tags({"cart": "alice"})
        self.count = 0

    def add(self, n):
        self.count += n
        self.items.set(self.count)
        requests.inc(tags={"route": "/cart"})
        return self.count


context = actorlib.init(num_cpus=2, include_dashboard=True, dashboard_port=0)
token = (Path(context["session_dir"]) / "token").read_text().strip()

actorlib.get([serve.remote(route) for route in ["/", "/", "/search", "/"]])
cart = Cart.remote()
actorlib.get([cart.add.remote(2), cart.add.remote(3)])
requests.inc(5, tags={"route": "/driver"})  # the driver's own metrics are reported too

# Ray checks arguments the same way (names, tag keys, values):
try:
    requests.inc(tags={"route": "/", "user": "bob"})
except ValueError as error:
    print("refused:", error)


def scrape():
    text = httpx.get(f"{context.dashboard_url}/metrics", headers={"Authorization": f"Bearer {token}"}).text
    return {family.name: family for family in text_string_to_metric_families(text) if family.name.startswith("shop_")}


# Reports reach the node within a couple of seconds: poll with a deadline.
deadline = time.monotonic() + 30
while True:
    families = scrape()
    total = sum(s.value for s in families["shop_requests"].samples) if "shop_requests" in families else 0
    if total == 11 and "shop_cart_items" in families:
        break
    assert time.monotonic() < deadline, f"/metrics did not show the example's metrics: {families}"
    time.sleep(0.2)

for sample in families["shop_requests"].samples:
    print(f"{sample.name}{{route={sample.labels['route']!r}}} = {sample.value:g}")
(cart_items,) = families["shop_cart_items"].samples
print(f"shop_cart_items{{cart={cart_items.labels['cart']!r}}} = {cart_items.value:g} (node {cart_items.labels['node_ip']})")
count = [s.value for s in families["shop_latency_seconds"].samples if s.name == "shop_latency_seconds_count"]
print(f"shop_latency_seconds: {sum(count):g} observations")

actorlib.shutdown()
print("metrics ok")
