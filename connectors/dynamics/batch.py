"""OData v4 `$batch` requests (multipart/mixed with change sets) and their answers.

Answers are read with the standard library's MIME parser; each part's payload is a raw
HTTP response (`HTTP/1.1 201 Created`, headers, body).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import Message
from typing import Any


@dataclass(frozen=True)
class Request:
    method: str
    url: str  # relative to the service root ("CustomersV3") or absolute path ("/data/...")
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    content_id: str | None = None

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


def build(items: list[list[Request] | Request]) -> tuple[bytes, str]:
    """A batch body and its content type; a list is a change set, a Request stands alone."""
    boundary = f"batch_{uuid.uuid4()}"
    out: list[str] = []
    content_id = 0
    for item in items:
        out.append(f"--{boundary}\r\n")
        if isinstance(item, list):
            changeset = f"changeset_{uuid.uuid4()}"
            out.append(f"Content-Type: multipart/mixed; boundary={changeset}\r\n\r\n")
            for request in item:
                content_id += 1
                out.append(f"--{changeset}\r\n" + _part(request, content_id))
            out.append(f"--{changeset}--\r\n")
        else:
            out.append(_part(item, None))
    out.append(f"--{boundary}--\r\n")
    return "".join(out).encode(), f"multipart/mixed; boundary={boundary}"


def _part(request: Request, content_id: int | None) -> str:
    head = "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
    if content_id is not None:
        head += f"Content-ID: {content_id}\r\n"
    lines = [f"{request.method} {request.url} HTTP/1.1", "Accept: application/json;IEEE754Compatible=true"]
    lines += [f"{k}: {v}" for k, v in request.headers.items()]
    if request.body is None:
        return head + "\r\n" + "\r\n".join(lines) + "\r\n\r\n"
    lines.append("Content-Type: application/json;IEEE754Compatible=true")
    return head + "\r\n" + "\r\n".join(lines) + "\r\n\r\n" + json.dumps(request.body) + "\r\n"


def parse(body: bytes, content_type: str) -> list[list[Response] | Response]:
    message = message_from_bytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body, policy=policy.HTTP)
    out: list[list[Response] | Response] = []
    for part in message.get_payload():
        assert isinstance(part, Message)
        if part.get_content_type() == "multipart/mixed":
            out.append([_response(sub) for sub in part.get_payload()])  # type: ignore[arg-type]
        else:
            out.append(_response(part))
    return out


def _response(part: Message) -> Response:
    raw = part.get_payload(decode=True)
    assert isinstance(raw, bytes)
    head, _, body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
    lines = head.decode("utf-8", "replace").split("\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)}
    return Response(status, headers, body.rstrip(b"\n"), part.get("Content-ID"))
