"""Jobs: submit a script to a cluster, follow its output, stop a job, list and delete them.

Against a running cluster (see docs/jobs.md)::

    actorlib start --head
    python examples/jobs.py http://127.0.0.1:8265

or on its own, where it starts a one-node cluster in this process with its HTTP API.
The same calls work with Ray's client: ``from ray.job_submission import JobSubmissionClient``.
"""

import asyncio
import atexit
import shutil
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import actorlib
from actorlib.job_submission import JobStatus, JobSubmissionClient

# A project directory: the job's entrypoint and a helper module it imports, here and in its tasks.
project = Path(tempfile.mkdtemp(prefix="jobs-example-"))
atexit.register(shutil.rmtree, project, ignore_errors=True)
(project / "helper.py").write_text("def square(x):\n    return x * x\n")
(project / "main.py").write_text(textwrap.dedent("""
    import actorlib, helper

    actorlib.init()  # inside a job: joins the cluster that runs it

    @actorlib.remote
    def square(x):
        import helper  # the working_dir is on every worker's path
        return helper.square(x)

    print("squares:", actorlib.get([square.remote(i) for i in range(5)]))
"""))

if len(sys.argv) > 1:
    client = JobSubmissionClient(sys.argv[1])  # the token comes from this machine's session
else:
    actorlib.init(num_cpus=2, include_dashboard=True, dashboard_port=0)
    client = JobSubmissionClient()  # this process's cluster

# 1. Submit: the working_dir is zipped and uploaded; the entrypoint runs in it.
job = client.submit_job(entrypoint="python main.py", runtime_env={"working_dir": str(project)}, metadata={"owner": "example"})
print("submitted", job)


# 2. Follow its output as it is written, until it ends (an async iterator, as in Ray).
async def follow(job_id: str) -> None:
    async for chunk in client.tail_job_logs(job_id):
        print(chunk, end="")


asyncio.run(follow(job))
assert client.get_job_status(job) == JobStatus.SUCCEEDED
print("logs end with:", client.get_job_logs(job).splitlines()[-1])

# 3. Stop a long job: SIGTERM to its whole process group, SIGKILL if it lingers.
sleeper = client.submit_job(entrypoint="sleep 60")
while client.get_job_status(sleeper) != JobStatus.RUNNING:
    time.sleep(0.05)
client.stop_job(sleeper)
while not client.get_job_status(sleeper).is_terminal():
    time.sleep(0.05)
print("the sleeper is", client.get_job_status(sleeper))

# 4. Entrypoint resources: a job that asks for them runs on a node that has them free and holds
#    them while it runs (with `actorlib start --address ... --resources '{"x": 1}'`, ask for
#    entrypoint_resources={"x": 1} to run on that node). One that finds no room waits PENDING.
big = client.submit_job(entrypoint="sleep 1", entrypoint_num_cpus=2)
small = client.submit_job(entrypoint="echo my turn", entrypoint_num_cpus=1)
while client.get_job_status(big) != JobStatus.RUNNING:
    time.sleep(0.05)
print("while the first holds both CPUs, the second is", client.get_job_status(small))
while not client.get_job_status(small).is_terminal():
    time.sleep(0.05)
print("then it ran on node", client.get_job_info(small).driver_node_id[:8], "and printed", client.get_job_logs(small).split()[-2:])

# 5. List, then delete what is finished.
for details in client.list_jobs():
    print(f"{details.submission_id}: {details.status} ({details.entrypoint})")
    client.delete_job(details.submission_id)
assert client.list_jobs() == []
client.close()
print("jobs ok")
