"""The one error type the `meco` CLI reports: its message is printed on one line and the
command exits 2. Library errors a user can fix (a bad config, checkpoint, dataset, backend)
derive from it, so commands raise them and `meco_core.cli.app` does the reporting."""


class MecoError(Exception):
    """A problem the user can fix; the message says what to do."""
