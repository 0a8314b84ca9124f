"""OData v4 `$batch` in the multipart/mixed format: parsing requests, writing responses.

A batch is a sequence of single requests (`application/http` parts) and change sets
(nested `multipart/mixed` parts). Requests inside a change set succeed or fail as one;
a failed change set answers with the one failing response instead of its parts.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlsplit

_BOUNDARY_RX = re.compile(r'boundary="?([^";]+)"?', re.I)
_HTTP_REASONS = {200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request", 401: "Unauthorized",
                 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 412: "Precondition Failed",
                 429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}  # fmt: skip


class BatchFormatError(Exception):
    pass


@dataclass
class SubRequest:
    method: str
    path: str  # /data/...
    query: str
    headers: dict[str, str]
    body: bytes
    content_id: str | None = None


@dataclass
class SubResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    content_id: str | None = None


@dataclass
class ChangeSet:
    requests: list[SubRequest] = field(default_factory=list)


def boundary_of(content_type: str) -> str:
    m = _BOUNDARY_RX.search(content_type or "")
    if m is None or not content_type.lower().startswith("multipart/mixed"):
        raise BatchFormatError("The content type of a batch request must be multipart/mixed with a boundary.")
    return m.group(1)


def _parts(body: bytes, boundary: str) -> list[bytes]:
    delimiter = b"--" + boundary.encode()
    chunks = body.split(delimiter)
    if len(chunks) < 2:
        raise BatchFormatError(f"The batch body has no part delimited by '--{boundary}'.")
    parts = []
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break  # the close delimiter; what follows is the epilogue
        # the line break after a delimiter, and the one before the next, belong to the delimiters
        chunk = chunk[2:] if chunk.startswith(b"\r\n") else chunk[1:] if chunk.startswith(b"\n") else chunk
        chunk = chunk[:-2] if chunk.endswith(b"\r\n") else chunk[:-1] if chunk.endswith(b"\n") else chunk
        parts.append(chunk)
    return parts


def _split_head(raw: bytes) -> tuple[dict[str, str], bytes, list[str]]:
    """Header lines (and the first line when asked) up to the blank line; then the body."""
    text_end = re.search(rb"\r?\n\r?\n", raw)
    if text_end is None:
        head, rest = raw, b""
    else:
        head, rest = raw[: text_end.start()], raw[text_end.end() :]
    lines = head.decode("utf-8", "replace").splitlines()
    headers: dict[str, str] = {}
    first: list[str] = []
    for i, line in enumerate(lines):
        if ":" in line and not (i == 0 and re.match(r"^[A-Z]+ \S+ HTTP/", line)):
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
        elif line.strip():
            first.append(line.strip())
    return headers, rest, first


def _request(raw: bytes) -> SubRequest:
    mime_headers, inner, _ = _split_head(raw)
    if "application/http" not in mime_headers.get("content-type", "").lower():
        raise BatchFormatError("Each batch part must have Content-Type application/http.")
    headers, body, first = _split_head(inner)
    if not first:
        raise BatchFormatError("A batch part is missing its request line.")
    bits = first[0].split()
    if len(bits) < 2:
        raise BatchFormatError(f"Malformed request line '{first[0]}'.")
    method, target = bits[0].upper(), bits[1]
    url = urlsplit(target)
    path = url.path
    if not path.startswith("/") and not path.startswith("$"):
        path = "/data/" + path  # relative to the service root
    return SubRequest(
        method=method,
        path=path,
        query=url.query,
        headers=headers,
        body=body.rstrip(b"\r\n"),
        content_id=mime_headers.get("content-id") or headers.get("content-id"),
    )


def parse(body: bytes, content_type: str) -> list[SubRequest | ChangeSet]:
    items: list[SubRequest | ChangeSet] = []
    for raw in _parts(body, boundary_of(content_type)):
        mime_headers, inner, _ = _split_head(raw)
        ctype = mime_headers.get("content-type", "")
        if ctype.lower().startswith("multipart/mixed"):
            cs = ChangeSet()
            for sub in _parts(inner, boundary_of(ctype)):
                req = _request(sub)
                if req.method == "GET":
                    raise BatchFormatError("A change set cannot contain a GET request.")
                cs.requests.append(req)
            items.append(cs)
        else:
            items.append(_request(raw))
    return items


def _http_part(resp: SubResponse) -> bytes:
    lines = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if resp.content_id:
        lines.append(f"Content-ID: {resp.content_id}")
    reason = _HTTP_REASONS.get(resp.status, "")
    inner = [f"HTTP/1.1 {resp.status} {reason}".rstrip()]
    inner += [f"{k}: {v}" for k, v in resp.headers]
    return ("\r\n".join(lines) + "\r\n\r\n" + "\r\n".join(inner) + "\r\n\r\n").encode() + resp.body + b"\r\n"


def render(results: list[SubResponse | list[SubResponse]]) -> tuple[bytes, str]:
    """The batch response body and its content type."""
    boundary = f"batchresponse_{uuid.uuid4()}"
    out = bytearray()
    for item in results:
        out += f"--{boundary}\r\n".encode()
        if isinstance(item, list):
            cs_boundary = f"changesetresponse_{uuid.uuid4()}"
            out += f"Content-Type: multipart/mixed; boundary={cs_boundary}\r\n\r\n".encode()
            for resp in item:
                out += f"--{cs_boundary}\r\n".encode() + _http_part(resp)
            out += f"--{cs_boundary}--\r\n".encode()
        else:
            out += _http_part(item)
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/mixed; boundary={boundary}"


def parse_response(body: bytes, content_type: str) -> list[SubResponse | list[SubResponse]]:
    """Read a batch response (used by the tests, and handy for clients)."""
    out: list[SubResponse | list[SubResponse]] = []
    for raw in _parts(body, boundary_of(content_type)):
        mime_headers, inner, _ = _split_head(raw)
        ctype = mime_headers.get("content-type", "")
        if ctype.lower().startswith("multipart/mixed"):
            out.append([_response(sub) for sub in _parts(inner, boundary_of(ctype))])
        else:
            out.append(_response(raw))
    return out


def _response(raw: bytes) -> SubResponse:
    mime_headers, inner, _ = _split_head(raw)
    text_end = re.search(rb"\r?\n\r?\n", inner)
    head, body = (inner, b"") if text_end is None else (inner[: text_end.start()], inner[text_end.end() :])
    lines = head.decode().splitlines()
    status = int(lines[0].split()[1])
    headers = [(k.strip(), v.strip()) for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)]
    return SubResponse(status, headers, body.rstrip(b"\r\n"), mime_headers.get("content-id"))
