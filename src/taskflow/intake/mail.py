"""Email intake: raw RFC 5322 bytes to a normalized `Message`, with the standard `email` package.

`parse_email` reads the headers (a missing Message-ID becomes a digest of the bytes, so a
redelivery is still recognised), the plain text (or the HTML made text when there is no
plain part), forwarded messages, and the attachments (stored through a `FileStorage`, kept
as `FileRef`s). It tells auto-replies (RFC 3834 `Auto-Submitted`, `Precedence: bulk`, ...)
and delivery-status reports (bounces) apart: intake opens nothing for them.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import hashlib
import html.parser
import mimetypes
import re
from datetime import datetime
from email.message import Message as RawMessage
from typing import Any

import attrs

from taskflow.intake.files import FileStorage
from taskflow.intake.model import Channel, Message, Sender

__all__ = ["ParsedEmail", "html_to_text", "parse_email", "thread_ids"]

_ID = re.compile(r"<([^<>\s]+)>")
_BLOCKS = frozenset(
    {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table"}
)


@attrs.frozen
class ParsedEmail:
    """A parsed email: the message, and why it is automatic (an auto-reply, a bounce), if it is."""

    message: Message
    automatic: str | None = None


class _Text(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "head"):
            self._skip += 1
        elif tag in _BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "head"):
            self._skip = max(self._skip - 1, 0)
        elif tag in _BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    """Return the readable text of an HTML body: tags dropped, blocks on lines of their own."""
    parser = _Text()
    parser.feed(markup)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def thread_ids(value: str) -> tuple[str, ...]:
    """Return the message ids a References or In-Reply-To header names, in order."""
    return tuple(_ID.findall(value or ""))


def _header(msg: RawMessage, name: str) -> str:
    try:
        value = msg.get(name)
    except Exception:  # a header the parser cannot make sense of reads as missing
        return ""
    if value is None:
        return ""
    try:
        return " ".join(str(value).split())
    except Exception:
        return ""


def _text_of(part: RawMessage) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:  # an unknown charset name: read as UTF-8, marking what does not fit
        return payload.decode("utf-8", errors="replace")


def _automatic(msg: RawMessage) -> str | None:
    submitted = _header(msg, "Auto-Submitted").lower()
    if submitted and submitted != "no":
        return f"auto-reply (Auto-Submitted: {submitted})"
    for name in ("X-Autoreply", "X-Autorespond"):
        if _header(msg, name):
            return f"auto-reply ({name})"
    precedence = _header(msg, "Precedence").lower()
    if precedence in ("bulk", "junk", "auto_reply"):
        return f"auto-reply (Precedence: {precedence})"
    if msg.get_content_type() == "multipart/report":
        report = (msg.get_param("report-type") or "").lower()  # type: ignore[union-attr]
        if report == "delivery-status":
            return "bounce (delivery-status report)"
    for part in msg.walk():
        if part.get_content_type() in ("message/delivery-status", "message/global-delivery-status"):
            return "bounce (delivery-status report)"
    sender = email.utils.parseaddr(_header(msg, "From"))[1].lower()
    if sender.split("@", 1)[0] in ("mailer-daemon", "postmaster"):
        return f"bounce (from {sender})"
    return None


@attrs.define
class _Walk:
    storage: FileStorage | None
    limit: int | None
    plain: list[str] = attrs.Factory(list)
    html: list[str] = attrs.Factory(list)
    forwarded: list[str] = attrs.Factory(list)
    files: list[Any] = attrs.Factory(list)
    notes: list[str] = attrs.Factory(list[str])
    count: int = 0

    def visit(self, msg: RawMessage) -> None:
        if msg.get_content_type() == "message/rfc822" or not msg.is_multipart():
            self.visit_part(msg)
            return
        for part in msg.get_payload():
            if isinstance(part, RawMessage):
                self.visit(part)

    def visit_part(self, part: RawMessage) -> None:
        ctype = part.get_content_type()
        disposition = (part.get_content_disposition() or "").lower()
        filename = part.get_filename()
        if ctype == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], RawMessage):
                self.forward(inner[0])
            return
        if ctype == "message/external-body":
            where = part.get_param("url") or part.get_param("name") or "an external location"
            self.notes.append(f"attachment kept elsewhere, not stored: {where}")
            return
        is_text = ctype in ("text/plain", "text/html")
        if is_text and disposition != "attachment" and not filename:
            (self.plain if ctype == "text/plain" else self.html).append(_text_of(part))
            return
        self.attach(part, ctype, filename)

    def forward(self, inner: RawMessage) -> None:
        walk = _Walk(self.storage, self.limit)
        walk.visit(inner)
        head = f"Forwarded message from {_header(inner, 'From') or 'unknown'}"
        subject = _header(inner, "Subject")
        text = walk.text()
        self.forwarded.append(f"---------- {head}: {subject} ----------\n{text}".rstrip())
        self.files.extend(walk.files)
        self.notes.extend(walk.notes)

    def attach(self, part: RawMessage, ctype: str, filename: str | None) -> None:
        self.count += 1
        content = part.get_payload(decode=True)
        data = content if isinstance(content, bytes) else b""
        name = filename or f"attachment-{self.count}{mimetypes.guess_extension(ctype) or ''}"
        if self.storage is None:
            self.notes.append(f"attachment not stored (no file storage): {name}")
            return
        if self.limit is not None and len(data) > self.limit:
            self.notes.append(
                f"attachment not stored: {name} is {len(data)} bytes, over the limit of {self.limit}"
            )
            return
        self.files.append(self.storage.store(name, ctype, data))

    def text(self) -> str:
        body = "\n\n".join(t.strip() for t in self.plain if t.strip())
        if not body:
            body = "\n\n".join(html_to_text(h) for h in self.html if h.strip())
        return "\n\n".join(p for p in (body, *self.forwarded) if p)


def _sent_at(msg: RawMessage) -> datetime | None:
    value = _header(msg, "Date")
    if not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.utcoffset() is not None else None


def parse_email(
    raw: bytes, *, storage: FileStorage | None = None, max_attachment_bytes: int | None = None
) -> ParsedEmail:
    """Return the message raw RFC 5322 bytes hold, and whether it is an auto-reply or a bounce.

    Broken headers read as missing; a missing Message-ID becomes `sha256:<digest of the
    bytes>`; an attachment over `max_attachment_bytes` is not stored and noted instead.
    """
    msg: RawMessage = email.message_from_bytes(raw, policy=email.policy.default)
    ids = thread_ids(_header(msg, "Message-ID"))
    message_id = ids[0] if ids else f"sha256:{hashlib.sha256(raw).hexdigest()}"
    name, address = email.utils.parseaddr(_header(msg, "From"))
    replying = thread_ids(_header(msg, "In-Reply-To"))
    references = tuple(reversed(thread_ids(_header(msg, "References"))))
    walk = _Walk(storage, max_attachment_bytes)
    try:
        walk.visit(msg)
    except Exception as exc:  # a structure the parser cannot walk: keep what it can say
        walk.notes.append(f"the body could not be read: {type(exc).__name__}")
    message = Message(
        Channel.EMAIL,
        message_id,
        Sender(address if "@" in address else "", name),
        subject=_header(msg, "Subject"),
        body=walk.text(),
        attachments=tuple(walk.files),
        references=(*replying, *references),
        sent_at=_sent_at(msg),
        notes=walk.notes,
    )
    return ParsedEmail(message, _automatic(msg))
