"""Domain errors that services raise and entry points translate (HTTP status, form error, command message)."""


class DomainError(Exception):
    """A request that cannot be carried out as asked; the message is safe to show to the user."""

    status_code = 400


class NotPermitted(DomainError):
    """The actor's role does not allow this action."""

    status_code = 403


class StaleVersion(DomainError):
    """The object changed since the version the actor based the action on."""

    status_code = 409


class NotFound(DomainError):
    """The object does not exist (or is not visible to the actor)."""

    status_code = 404
