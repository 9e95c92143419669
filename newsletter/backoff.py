"""When to try again, the one way for every retry: a provider's call (newsletter.providers
.http), a copy the server deferred (newsletter.delivery.ledger), a queued email
(newsletter.store.mail_queue).
"""

from __future__ import annotations

import random


def backoff(attempt: int, base: float, cap: float, *, jitter: bool = True) -> float:
    """Seconds before retry number `attempt` (1 is the first): `base` doubled for each
    attempt before it, at most `cap`. Jittered, it is drawn from the upper half of that, so
    that workers and processes which failed together do not come back in lockstep."""
    delay = min(cap, base * 2 ** max(0, attempt - 1))
    return delay * random.uniform(0.5, 1.0) if jitter else delay
