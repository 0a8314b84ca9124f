"""Memo keys other workflows and activities read."""

from __future__ import annotations

BATCH_MEMO = "d2r_close"  # the memo key the period close reads (activities/period_close.py)
# The engagement's view as its `view` query would return it, published where the run settles:
# the API answers a GET from it without a worker (api/engagements.py). Encrypted and, being
# over 1 KiB, compressed by the codec (security/codec.py), so a visibility page stays small.
VIEW_MEMO = "d2r_view"
