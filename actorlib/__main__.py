"""``python -m actorlib ...`` is the ``actorlib`` command."""

from ._cli import main

main()
