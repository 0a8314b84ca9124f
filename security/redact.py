"""Secrets never reach a log line: a logging filter that blanks bearer tokens, JWTs and
token / secret parameters (an access log line of `/dashboard?token=...` included)."""

from __future__ import annotations

import logging
import re

REDACTED = "[redacted]"
_PATTERNS = [
    re.compile(r"(?i)\b((?:access_|id_|refresh_)?token|client_secret|password|secret)=([^&\s\"']+)"),
    re.compile(r"(?i)\b(bearer)\s+([^\s\"',]+)"),
]
_JWT = re.compile(r"\beyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]{5,}")


def redact(text: str) -> str:
    text = _PATTERNS[0].sub(lambda m: f"{m.group(1)}={REDACTED}", text)
    text = _PATTERNS[1].sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    return _JWT.sub(REDACTED, text)


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


def install(*logger_names: str) -> None:
    """Add the filter to every handler of the root logger and of `logger_names` (uvicorn's
    own handlers do not pass through the root's)."""
    flt = RedactSecrets()
    for name in ("", *logger_names):
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, RedactSecrets) for f in handler.filters):
                handler.addFilter(flt)
