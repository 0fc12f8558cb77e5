"""User mistakes: reported as one clear paragraph and exit code 2, never as a traceback."""


class UserError(Exception):
    """A problem the user can fix (config, input files, output folder)."""

    exit_code = 2


def one_line(error: BaseException | str) -> str:
    """An error's message on one line, for the one-paragraph messages users get."""
    return " ".join(str(error).split()) or type(error).__name__
