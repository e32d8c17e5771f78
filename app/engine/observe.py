"""What the engine reports as it works, to whoever listens.

Redemptions and holds end with an outcome (`redeemed`, `replayed`, `held`, or the
refusal's type); the engine says so here and knows nothing of the metrics library
or the HTTP request that asked. `app.metrics` listens (it adds the dialect).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

Listener = Callable[[str], object]
_listeners: dict[str, Listener] = {}
# Outcomes kept instead of told, while a request may still answer otherwise (`holding`).
_held: ContextVar[list[tuple[str, str]] | None] = ContextVar("observe_held", default=None)


def listen(kind: str, listener: Listener) -> None:
    """`listener(outcome)` hears every outcome of `kind` ("redemption" or "hold")."""
    _listeners[kind] = listener


@contextmanager
def holding(outcomes: list[tuple[str, str]]) -> Iterator[None]:
    """Outcomes told in the block are kept in `outcomes` instead: a keyed request tells them
    (`tell`) only when its work's answer is the one given, not a stored one replayed."""
    token = _held.set(outcomes)
    try:
        yield
    finally:
        _held.reset(token)


def tell(outcomes: list[tuple[str, str]]) -> None:
    """Tell outcomes kept by `holding`."""
    for kind, outcome in outcomes:
        _tell(kind, outcome)


def _tell(kind: str, outcome: str) -> None:
    held = _held.get()
    if held is not None:
        held.append((kind, outcome))
        return
    listener = _listeners.get(kind)
    if listener is not None:
        listener(outcome)


def redemption(outcome: str) -> None:
    """A redemption attempt ended with `outcome`."""
    _tell("redemption", outcome)


def hold(outcome: str) -> None:
    """A hold was made, refused, confirmed or released."""
    _tell("hold", outcome)
