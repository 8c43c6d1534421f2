"""The dashboard's HTTP face from a script: log in like a browser, read the state API as JSON,
follow it live (Server-Sent Events), and scrape /metrics with the read-only metrics token.

Open the pages in a browser at the URL this prints (see docs/dashboard.md); against a running
cluster (``actorlib start --head``) it is http://127.0.0.1:8265 and the token is the session's
``token`` file.

Run it: python examples/dashboard.py
"""

import json
import os
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

import actorlib


@actorlib.remote
def square(x):
    return x * x


@actorlib.remote(max_restarts=2)
class Counter:
    def pid(self):
        return os.getpid()


context = actorlib.init(num_cpus=2, include_dashboard=True, dashboard_port=0)
url = context.dashboard_url
session = Path(context["session_dir"])
token = (session / "token").read_text().strip()
print("dashboard at", url)

print(actorlib.get([square.remote(i) for i in range(10)]))
counter = Counter.remote()
actorlib.get(counter.pid.remote())

# 1. Without credentials every page and API answers 401 (a browser gets the login form).
print("anonymous:", httpx.get(f"{url}/api/state/nodes").status_code)

# 2. A browser logs in once; the session cookie (HttpOnly, SameSite=Strict) does the rest.
#    State changes (submitting a job) must also come from the dashboard's own origin.
with httpx.Client(base_url=url, timeout=30) as browser:
    browser.post("/login", data={"token": token, "next": "/"}, headers={"origin": url})
    print("logged in:", browser.get("/api/state/nodes").status_code)
    nodes = browser.get("/api/state/nodes").json()
    print("nodes:", [(n["node_ip"], n["state"], n["resources_total"]["CPU"]) for n in nodes["items"]])
    actors = browser.get("/api/state/actors", params={"filter": "class_name=Counter"}).json()
    print("actors:", [(a["class_name"], a["state"], a["num_restarts"]) for a in actors["items"]])

    # 3. The same query, live: one event now, another whenever the answer changes.
    with browser.stream("GET", "/api/watch/summary/actors", params={"interval": "0.5"}) as events:
        for line in events.iter_lines():
            if line.startswith("data: "):
                print("live summary:", json.loads(line[6:])["by_state"])
                break

# 4. Scrapers use the read-only metrics token: it reads /metrics and nothing else.
metrics_token = (session / "metrics_token").read_text().strip()
scrape = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {metrics_token}"})
samples = [s for family in text_string_to_metric_families(scrape.text) for s in family.samples]
alive = sum(s.value for s in samples if s.name == "actorlib_nodes" and s.labels["state"] == "ALIVE")
refused = httpx.get(f"{url}/api/state/nodes", headers={"Authorization": f"Bearer {metrics_token}"}).status_code
print(f"metrics: {alive:g} alive node(s); the metrics token on the state API: {refused}")

actorlib.shutdown()
print("dashboard ok")
