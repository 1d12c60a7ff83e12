"""Application errors that the CLI maps to exit codes (config errors live in `syncd.config`)."""


class SyncFailed(Exception):
    """A command finished but some of its work failed (exit 1); the message is one line."""


class BadUsage(Exception):
    """A usage error found once the command runs (exit 2), e.g. a date the store cannot describe;
    the message is one line."""
