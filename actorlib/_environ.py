"""Environment variables that actorlib processes set for the programs they start."""

ADDRESS_ENV = "ACTORLIB_ADDRESS"  # the head to connect to (init() with no address)
TOKEN_ENV = "ACTORLIB_TOKEN"  # the cluster token itself
TOKEN_FILE_ENV = "ACTORLIB_TOKEN_FILE"  # a file holding it
SUBMISSION_ID_ENV = "ACTORLIB_SUBMISSION_ID"  # set for a job's entrypoint: its driver registers as that job
JOB_RUNTIME_ENV = "ACTORLIB_JOB_RUNTIME_ENV"  # the job's runtime_env (JSON, packages as URIs): init()'s default
NODE_ID_ENV = "ACTORLIB_NODE_ID"  # the node a process runs on (workers, job entrypoints): a driver there registers with it
