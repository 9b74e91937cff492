"""The exception tree. Every error a user can see is one of these and carries a readable sentence.

    MonitorError
     ├── ConfigError          invalid config file: names the file and the key
     ├── FetchError           an HTTP request failed (timeout, size, blocked address, status)
     ├── ParseError           downloaded bytes are not a usable feed / page
     ├── StoreError           the archive cannot be opened or written
     ├── SearchQueryError     a malformed full-text query
     ├── TemplateError        a newsletter template failed: names the template and the line
     ├── DigestError          a digest action is not allowed (state, guard, empty week)
     ├── SubscriberError      a bad address or subscriber operation
     └── MailError            SMTP delivery problems

Each exception's str() is the sentence shown to the user; no traceback is shown for these.
"""

from __future__ import annotations


class MonitorError(Exception):
    """Base class: str(error) is a sentence a user can act on."""


class ConfigError(MonitorError):
    def __init__(self, path: object, key: str, message: str):
        self.path = str(path)
        self.key = key
        self.message = message
        where = f"{self.path}: {key}: " if key else f"{self.path}: "
        super().__init__(where + message)

    def __reduce__(self):  # picklable across worker processes
        return (self.__class__, (self.path, self.key, self.message))


class FetchError(MonitorError):
    def __init__(self, url: str, message: str):
        self.url = url
        self.message = message
        super().__init__(message)

    def __reduce__(self):
        return (self.__class__, (self.url, self.message))


class ParseError(MonitorError):
    def __init__(self, url: str, message: str):
        self.url = url
        self.message = message
        super().__init__(message)

    def __reduce__(self):
        return (self.__class__, (self.url, self.message))


class StoreError(MonitorError):
    pass


class SearchQueryError(MonitorError):
    pass


class TemplateError(MonitorError):
    def __init__(self, template: str, line: int | None, message: str):
        self.template = template
        self.line = line
        self.message = message
        where = f"{template}, line {line}" if line else template
        super().__init__(f"Template error in {where}: {message}")

    def __reduce__(self):
        return (self.__class__, (self.template, self.line, self.message))


class DigestError(MonitorError):
    pass


class SubscriberError(MonitorError):
    pass


class MailError(MonitorError):
    pass


class WebAccountError(MonitorError):
    """A web desk account problem: unknown user, weak password, too many sign-in attempts."""


class SubscriberImportError(SubscriberError):
    """A CSV import refused as a whole; .problems lists (row number, message) for each bad row."""

    def __init__(self, path: object, problems: list[tuple[int, str]]):
        self.path = str(path)
        self.problems = problems
        lines = "\n".join(f"  row {row}: {message}" for row, message in problems[:50])
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(f"{self.path}: {len(problems)} bad row(s), nothing was imported:\n"
                         f"{lines}{more}")
