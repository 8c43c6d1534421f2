"""actorlib: a distributed actor runtime for Python on Trio."""

__version__ = "0.1.0"
