"""The lab's own errors. A GalaxyLabError is something a user caused or can fix (a bad setting, a missing file,
a full queue): the CLI prints its message and the pages show it. Any other exception is a bug and keeps its
traceback."""


class GalaxyLabError(Exception):
    """An error to report in plain words; the message says what was received and what was expected."""


class InvalidInputError(GalaxyLabError, ValueError):
    """A value chosen or typed by the user (an option, a name, a size) that the lab cannot use."""
