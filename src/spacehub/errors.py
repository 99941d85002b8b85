"""The one exception tree. Services raise these; ``app.py`` renders them the way ``hf_raise_for_status`` reads them.

HubError(status_code, error_code, message)
├── BadRequest            400
│   └── Unprocessable     422   (invalid paths in a commit, as the Hub answers)
├── Unauthorized          401   (no or bad token where one is needed)
├── PaymentRequired       402
├── Forbidden             403   (visible repo, missing permission)
├── NotFound              404
│   ├── RepoNotFound      404   X-Error-Code: RepoNotFound (also for private repos you may not see)
│   ├── RevisionNotFound  404   X-Error-Code: RevisionNotFound
│   └── EntryNotFound     404   X-Error-Code: EntryNotFound
├── Conflict              409   (may carry ``url`` for create/duplicate)
├── PreconditionFailed    412   (stale parentCommit)
├── PayloadTooLarge       413
├── RequestHeaderFieldsTooLarge 431 (``limits.RequestLimits``)
└── NotImplementedOnHub   501   (an endpoint we know of but do not serve)

BackendError              (runtime backends, kopf semantics)
├── TemporaryBackendError(delay)
└── PermanentBackendError
"""

from __future__ import annotations

from typing import Any


class HubError(Exception):
    status_code = 500
    error_code: str | None = None

    def __init__(self, message: str, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra  # merged into the JSON body (e.g. ``url`` on a 409)
        self.headers: dict[str, str] = headers or {}


class BadRequest(HubError):
    status_code = 400


class Unprocessable(BadRequest):
    status_code = 422


class Unauthorized(HubError):
    status_code = 401


class PaymentRequired(HubError):
    status_code = 402


class Forbidden(HubError):
    status_code = 403


class NotFound(HubError):
    status_code = 404


class RepoNotFound(NotFound):
    error_code = "RepoNotFound"


class RevisionNotFound(NotFound):
    error_code = "RevisionNotFound"


class EntryNotFound(NotFound):
    error_code = "EntryNotFound"


class Conflict(HubError):
    status_code = 409


class PreconditionFailed(HubError):
    status_code = 412


class PayloadTooLarge(HubError):
    status_code = 413


class TooManyRequests(HubError):
    status_code = 429


class RequestHeaderFieldsTooLarge(HubError):
    status_code = 431


class NotImplementedOnHub(HubError):
    status_code = 501


class BackendError(Exception):
    """Raised by runtime backends."""


class TemporaryBackendError(BackendError):
    def __init__(self, message: str, delay: float = 5.0) -> None:
        super().__init__(message)
        self.delay = delay


class PermanentBackendError(BackendError):
    pass
