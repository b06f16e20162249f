"""The one exception type users see for bad input; the CLI prints it as one line."""


class FedsimError(ValueError):
    """A problem with user input (config, data file, checkpoint), with the fix in its message."""
