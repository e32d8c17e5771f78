"""What the engine reports as it works, to whoever listens.

Redemptions and holds end with an outcome (`redeemed`, `replayed`, `held`, or the
refusal's type); the engine says so here and knows nothing of the metrics library
or the HTTP request that asked. `app.metrics` listens (it adds the dialect).
"""

from __future__ import annotations

from collections.abc import Callable

Listener = Callable[[str], object]
_listeners: dict[str, Listener] = {}


def listen(kind: str, listener: Listener) -> None:
    """`listener(outcome)` hears every outcome of `kind` ("redemption" or "hold")."""
    _listeners[kind] = listener


def _tell(kind: str, outcome: str) -> None:
    listener = _listeners.get(kind)
    if listener is not None:
        listener(outcome)


def redemption(outcome: str) -> None:
    """A redemption attempt ended with `outcome`."""
    _tell("redemption", outcome)


def hold(outcome: str) -> None:
    """A hold was made, refused, confirmed or released."""
    _tell("hold", outcome)
