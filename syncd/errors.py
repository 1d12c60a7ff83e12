"""Application errors that the CLI maps to exit codes (config errors live in `syncd.config`)."""


class SyncFailed(Exception):
    """A command finished but some of its work failed (exit 1); the message is one line."""
