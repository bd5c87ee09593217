"""Lifecycle hooks: code that runs before and after the store's use cases (docs/hooks.md).

A hook is any object with two methods::

    class Hook(Protocol):
        def before(self, event: Event) -> None: ...
        def after(self, event: Event, outcome: Outcome) -> None: ...

(``BaseHook`` has both as no-ops: subclass it and override what you need.) Register hooks with
``FeatureStore(..., hooks=[...])`` or ``store.add_hook(hook)``; they live in the store's
``RuntimeContext`` and run in registration order.

Events (``Event.kind``) and what ``Event.request`` holds:

- ``online_read``: ``features`` (references, a FeatureService or its name), ``entity_rows``
  (as passed: read, do not modify), ``full_feature_names``. One event per request, also when
  the feature server reads several requests together (``get_online_features_many``). Result:
  the ``OnlineResponse``.
- ``historical_retrieval``: ``features``, ``entity_df``, ``full_feature_names``, ``as_of``.
  Result: the lazy ``RetrievalJob`` (the after event follows validation and planning, not
  the engine's run).
- ``materialize``: ``views`` (None: every online view), ``start``, ``end``, ``incremental``.
  Result: the list of ``ViewReport``.
- ``push``: ``source_name``, ``to``, ``batch_id``, ``rows`` (the data as passed). Result: the
  ``PushReport``.
- ``apply``: ``objects``, ``objects_to_delete``, ``partial``, ``force``. Result: the
  ``PlanResult``.
- ``rebuild_online``: ``views`` (None: every online view). Result: the list of
  ``RebuildReport``.

**Refusing.** A before-hook refuses the call by raising a ``SkewlessError`` (a
subclass of your own, with its ``http_status`` and ``code``: docs/hooks.md): nothing then runs, the caller gets that error (the feature server
answers with its HTTP status), and every hook's after event receives it as ``outcome.error``.
Any other exception from a hook is a bug in the hook and propagates as it is.

**After.** ``after`` always follows ``before`` with the result or the error and the call's
duration in seconds (for requests read together: the batch's). An exception raised by an
after-hook is logged and swallowed: the call has happened and its result is returned.

**Cost.** With no hook registered, a call pays one truthiness check of a tuple: no event is
built. With hooks, one ``Event`` and one ``Outcome`` per call (per request for online reads):
no per-row work.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple, Protocol, TypeVar, runtime_checkable

from skewless.errors import InvalidRequestError, SkewlessError

log = logging.getLogger("skewless.hooks")

ONLINE_READ = "online_read"
HISTORICAL_RETRIEVAL = "historical_retrieval"
MATERIALIZE = "materialize"
PUSH = "push"
APPLY = "apply"
REBUILD_ONLINE = "rebuild_online"
EVENTS = (ONLINE_READ, HISTORICAL_RETRIEVAL, MATERIALIZE, PUSH, APPLY, REBUILD_ONLINE)

_R = TypeVar("_R")


class Event(NamedTuple):
    """One call of a use case: its ``kind`` (one of ``EVENTS``), the ``principal`` it runs as
    (None until access control exists) and what it was asked (``request``: keys per kind in
    the module docstring). A named tuple: immutable, and cheap to build on the online path."""

    kind: str
    principal: Any
    request: Mapping[str, Any]


class Outcome(NamedTuple):
    """How a call ended: its ``result`` or its ``error`` (one of the two is None), and how
    long it took, in seconds."""

    result: Any
    error: BaseException | None
    seconds: float


@runtime_checkable
class Hook(Protocol):
    """The hook protocol (module docstring)."""

    def before(self, event: Event) -> None: ...

    def after(self, event: Event, outcome: Outcome) -> None: ...


class BaseHook:
    """A hook that does nothing: subclass it and override ``before`` and/or ``after``."""

    def before(self, event: Event) -> None:
        return None

    def after(self, event: Event, outcome: Outcome) -> None:
        return None


def check_hook(hook: Any) -> Hook:
    """``hook`` if it has callable ``before`` and ``after``; else InvalidRequestError."""
    if not (callable(getattr(hook, "before", None)) and callable(getattr(hook, "after", None))):
        raise InvalidRequestError(
            f"{hook!r} is not a hook: a hook has methods before(event) and after(event, outcome)",
            hint="subclass skewless.hooks.BaseHook and override what you need (docs/hooks.md)")
    if isinstance(hook, type):   # its methods would be called unbound, failing on first use
        raise InvalidRequestError(f"{hook!r} is a class, not a hook",
                                  hint=f"register an instance: {hook.__name__}()")
    for method in ("before", "after"):
        if inspect.iscoroutinefunction(getattr(hook, method)):
            # called without being awaited: its body never runs, so a refusal would be lost
            raise InvalidRequestError(
                f"{hook!r}: {method} is a coroutine function (async def); hooks are called "
                "synchronously, so it would never run",
                hint=f"define {method} with a plain def (docs/hooks.md)")
    return hook  # type: ignore[no-any-return]


def with_hook(hooks: tuple[Hook, ...], hook: Any) -> tuple[Hook, ...]:
    """``hooks`` with ``hook`` added last (checked first)."""
    return (*hooks, check_hook(hook))


def before(hooks: Sequence[Hook], event: Event) -> SkewlessError | None:
    """Run every before-hook; the refusal (a SkewlessError) of the first that refuses, else
    None. The hooks after a refusing one are not asked."""
    for hook in hooks:
        try:
            hook.before(event)
        except SkewlessError as e:
            return e
    return None


def after(hooks: Sequence[Hook], event: Event, outcome: Outcome) -> None:
    """Run every after-hook; their exceptions are logged, never raised (module docstring)."""
    for hook in hooks:
        try:
            hook.after(event, outcome)
        except Exception:  # noqa: BLE001 - the call happened: a hook must not undo its answer
            log.exception("after-hook %r failed on a %s event", hook, event.kind)


def run(hooks: Sequence[Hook], event: Event, call: Callable[[], _R]) -> _R:
    """``call()`` between the before and after events of ``event``: raises the refusal of a
    before-hook (then ``call`` does not run) or ``call``'s own error."""
    t0 = time.perf_counter()
    refusal = before(hooks, event)
    if refusal is not None:
        after(hooks, event, Outcome(None, refusal, time.perf_counter() - t0))
        raise refusal
    try:
        result = call()
    except BaseException as e:
        after(hooks, event, Outcome(None, e, time.perf_counter() - t0))
        raise
    after(hooks, event, Outcome(result, None, time.perf_counter() - t0))
    return result


def run_each(hooks: Sequence[Hook], events: Sequence[Event],
             call: Callable[[list[int]], Sequence[Any]]) -> list[Any]:
    """Several calls answered together (online reads combined into one store round trip):
    ``call(indices)`` answers the events at ``indices`` (those no before-hook refused), one
    answer per index, a SkewlessError standing for that call's error. Returns the answers in
    event order, refusals in place of the refused calls; each event gets its after event."""
    t0 = time.perf_counter()
    answers: list[Any] = [None] * len(events)
    todo: list[int] = []
    for i, event in enumerate(events):
        refusal = before(hooks, event)
        if refusal is None:
            todo.append(i)
        else:
            answers[i] = refusal
    try:
        got = call(todo) if todo else []
    except BaseException as e:
        seconds = time.perf_counter() - t0
        for event, answer in zip(events, answers):   # None: not refused, failed with the rest
            after(hooks, event, Outcome(None, e if answer is None else answer, seconds))
        raise
    for i, answer in zip(todo, got):
        answers[i] = answer
    seconds = time.perf_counter() - t0
    for event, answer in zip(events, answers):
        outcome = (Outcome(None, answer, seconds) if isinstance(answer, SkewlessError)
                   else Outcome(answer, None, seconds))
        for hook in hooks:
            try:
                hook.after(event, outcome)
            except Exception:  # noqa: BLE001 - as in ``after``
                log.exception("after-hook %r failed on a %s event", hook, event.kind)
    return answers


def hooks_of(hooks: Iterable[Any] | None) -> tuple[Hook, ...]:
    """The hooks given to ``FeatureStore(hooks=...)``, checked."""
    if hooks is not None and hasattr(hooks, "before"):   # one hook, not a list of them
        raise InvalidRequestError(f"hooks= takes a list of hooks, got the hook {hooks!r}",
                                  hint=f"write hooks=[{type(hooks).__name__}(...)]")
    return tuple(check_hook(h) for h in hooks or ())


__all__ = ["APPLY", "BaseHook", "EVENTS", "Event", "HISTORICAL_RETRIEVAL", "Hook", "MATERIALIZE",
           "REBUILD_ONLINE",
           "ONLINE_READ", "Outcome", "PUSH", "after", "before", "check_hook", "hooks_of", "run",
           "run_each", "with_hook"]
