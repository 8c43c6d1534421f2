"""Environment variables that actorlib processes set for the programs they start."""

import os

ADDRESS_ENV = "ACTORLIB_ADDRESS"  # the head to connect to (init() with no address)
TOKEN_ENV = "ACTORLIB_TOKEN"  # the cluster token itself
TOKEN_FILE_ENV = "ACTORLIB_TOKEN_FILE"  # a file holding it
SUBMISSION_ID_ENV = "ACTORLIB_SUBMISSION_ID"  # set for a job's entrypoint: its driver registers as that job
JOB_RUNTIME_ENV = "ACTORLIB_JOB_RUNTIME_ENV"  # the job's runtime_env (JSON, packages as URIs): init()'s default
NODE_ID_ENV = "ACTORLIB_NODE_ID"  # the node a process runs on (workers, job entrypoints): a driver there registers with it
# Set by a node for an actor's process: it asks the node which actor it is on its node
# connection (ActorSpecRequest). Not a runtime_env key: what the actor starts is no actor.
ACTOR_PROCESS_ENV = "ACTORLIB_ACTOR_PROCESS"


def with_own_code(environ: dict[str, str]) -> dict[str, str]:
    """``environ`` for a Python process that must run this process's actorlib (a local
    cluster's head, and through it its workers): PYTHONPATH starts with the directories
    actorlib and supervisors were imported from, unless they are site directories anyway.
    Without it a driver that found actorlib through ``sys.path`` alone (a script inserting
    a checkout, a current directory) could get a head running another copy: an editable
    install's, say."""
    import site
    from pathlib import Path

    import supervisors

    import actorlib

    skip = {str(Path(p).resolve()) for p in [*site.getsitepackages(), site.getusersitepackages()]}
    roots = [str(Path(module.__file__).resolve().parent.parent) for module in (actorlib, supervisors) if module.__file__]
    paths = [root for root in roots if root not in skip]
    if not paths:
        return environ
    existing = [p for p in environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {**environ, "PYTHONPATH": os.pathsep.join(dict.fromkeys([*paths, *existing]))}
