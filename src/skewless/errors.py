"""One error tree for the whole project.

Every error says what went wrong, names the culprit (object, column, row, file) and carries a
``hint`` saying what to do next. ``http_status`` lets the feature server map an error to a
response without a lookup table, and ``retryable`` separates transient faults from terminal ones.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class SkewlessError(Exception):
    """Base of every error skewless raises on purpose."""

    http_status: int = 500
    code: str = "internal"
    retryable: bool = False

    def __init__(self, message: str, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if not hint else f"{message}\n  hint: {hint}")

    def to_dict(self) -> dict[str, str | None]:
        return {"code": self.code, "message": self.message, "hint": self.hint}


class DefinitionError(SkewlessError, ValueError):
    """A definition (entity, source, view, service) is invalid."""

    http_status = 400
    code = "invalid_definition"


class ConfigError(SkewlessError, ValueError):
    """``feature_store.yaml`` or an environment override is invalid."""

    http_status = 400
    code = "invalid_config"


class UnknownObjectError(SkewlessError, KeyError):
    """A feature, view, entity or service is not in the registry."""

    http_status = 404
    code = "not_found"

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return Exception.__str__(self)


class InvalidRequestError(SkewlessError, ValueError):
    """The caller's input (entity rows, entity_df, arguments) is invalid."""

    http_status = 400
    code = "invalid_request"


class RequestTooLargeError(InvalidRequestError):
    """A request over a configured size limit (entities per request, body size): refused
    before any work, naming the limit and the count."""

    http_status = 413
    code = "request_too_large"


class TransformError(SkewlessError):
    """An on-demand feature view's function raised, or returned a result that does not fit its
    schema (a missing column, a value of another type, another number of rows). The message
    names the view and the column; the function's own exception is the ``__cause__``."""

    http_status = 500
    code = "transform_failed"


class SourceError(SkewlessError):
    """A data source is missing, unreadable or does not match its declared schema."""

    http_status = 400
    code = "invalid_source"


class PlanError(SkewlessError):
    """``plan``/``apply`` found problems; ``problems`` lists every one of them."""

    http_status = 400
    code = "invalid_plan"

    def __init__(self, problems: list[str], hint: str | None = None) -> None:
        self.problems = list(problems)
        body = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} problem(s) found; nothing was changed:\n{body}", hint)


class BreakingChangeError(SkewlessError):
    """``apply`` refused a breaking schema change; nothing was changed."""

    http_status = 409
    code = "breaking_change"


class EngineResourceError(SkewlessError):
    """An engine ran out of a resource (memory, disk) it was given."""

    http_status = 503
    code = "engine_resources_exhausted"
    retryable = True


class RegistryConflictError(SkewlessError):
    """Another ``apply`` committed first (optimistic versioning); reload and retry."""

    http_status = 409
    code = "registry_conflict"
    retryable = True


class RegistryError(SkewlessError):
    """The registry could not be read or written."""

    http_status = 503
    code = "registry_unavailable"


class LeaseHeldError(SkewlessError):
    """An exclusive operation (e.g. ``rebuild-online`` of a view) is already running: another
    process holds its lease (docs/online.md, "Leases"). ``holder`` describes it."""

    http_status = 409
    code = "operation_in_progress"
    retryable = True

    def __init__(self, message: str, hint: str | None = None, holder: object = None) -> None:
        super().__init__(message, hint)
        self.holder = holder


class LeaseLostError(SkewlessError):
    """A run's lease expired and another process took it over (the run stalled longer than the
    lease lasts); the run stops without swapping anything in (docs/online.md, "Leases")."""

    code = "lease_lost"
    retryable = True


class OnlineStoreError(SkewlessError):
    """The online store is unreachable or failed; the request may be retried."""

    http_status = 503
    code = "online_store_unavailable"
    retryable = True


class OnlineStoreDamagedError(OnlineStoreError):
    """The online store's data cannot be read (a SQLite file with damaged pages): reads go
    through the fallback chain, and ``rebuild-online`` moves the damaged file aside."""

    code = "online_store_damaged"
    retryable = False


class FeatureUnavailableError(SkewlessError):
    """Fail closed: a view with ``on_missing="fail"`` has no fresh value for an entity."""

    http_status = 503
    code = "feature_unavailable"


class MaterializationError(SkewlessError):
    """Materialization arguments or state are invalid."""

    http_status = 400
    code = "invalid_materialization"


class MissingExtraError(SkewlessError, ImportError):
    """An optional dependency is not installed."""

    code = "missing_dependency"

    def __init__(self, module: str, extra: str) -> None:
        super().__init__(
            f"this feature needs the '{module}' package, which is not installed",
            hint=f'pip install "skewless[{extra}]"',
        )


class FeatureServerError(SkewlessError):
    """The feature server could not be reached, timed out, or answered something that is not
    a skewless response."""

    http_status = 503
    code = "feature_server_unavailable"
    retryable = True


def closest(name: str, choices: Iterable[str], n: int = 3) -> str:
    """A 'did you mean' phrase for ``name`` among ``choices`` (empty when nothing is close)."""
    choices = sorted(set(choices))
    close = difflib.get_close_matches(name, choices, n=n, cutoff=0.5)
    if close:
        return "did you mean " + " or ".join(repr(c) for c in close) + "?"
    if choices:
        shown = ", ".join(choices[:10]) + (", ..." if len(choices) > 10 else "")
        return f"known: {shown}"
    return "none are defined yet"


class UnsupportedError(SkewlessError):
    """A backend lacks a capability the call needs: a declared gap, "not implemented yet" or
    "not supported, by design" (docs/backends.md). Checked before anything runs; the message
    names the backend, what was asked and the gap, the hint what to do instead."""

    http_status = 501
    code = "unsupported"
