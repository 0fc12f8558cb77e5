"""User mistakes: reported as one clear paragraph and exit code 2, never as a traceback."""


class UserError(Exception):
    """A problem the user can fix (config, input files, output folder)."""

    exit_code = 2
