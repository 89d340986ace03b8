"""The one error type users see: bad input, named plainly, with nothing changed."""


class UserError(Exception):
    """Input the user can fix. The CLI prints it as one line and exits 2; the UI shows it as a message."""
