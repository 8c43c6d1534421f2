"""Worker processes: the task executor and the process entry point."""
