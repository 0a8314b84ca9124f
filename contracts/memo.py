"""Memo keys other workflows and activities read."""

from __future__ import annotations

BATCH_MEMO = "d2r_close"  # the memo key the period close reads (activities/period_close.py)
