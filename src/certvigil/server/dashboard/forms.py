"""Reading a submitted HTML form with a size bound, before anything else looks at it."""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.requests import Request

MAX_FORM_BYTES = 16 * 1024
"""The largest form body accepted; the dashboard's forms are a few hundred bytes."""


class FormError(Exception):
    """A form body that is too large or of the wrong type.

    Attributes:
        status: The HTTP status to answer with.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def read_form(request: Request) -> dict[str, str]:
    """The fields of an ``application/x-www-form-urlencoded`` body (first value of each).

    The body is read in chunks and refused as soon as it passes ``MAX_FORM_BYTES``,
    whatever ``Content-Length`` claims.

    Raises:
        FormError: 415 for another content type, 413 for a body that is too large,
            400 for one that is not UTF-8.
    """
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    # A form with no fields may come with no body and no type at all.
    if content_type not in ("application/x-www-form-urlencoded", ""):
        raise FormError(415, "forms must be sent as application/x-www-form-urlencoded")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise FormError(413, f"form larger than {MAX_FORM_BYTES} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_FORM_BYTES:
            raise FormError(413, f"form larger than {MAX_FORM_BYTES} bytes")
    if body and not content_type:
        raise FormError(415, "forms must be sent as application/x-www-form-urlencoded")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormError(400, "form is not UTF-8") from exc
    try:
        fields = parse_qs(text, keep_blank_values=True, max_num_fields=50)
    except ValueError as exc:
        raise FormError(400, "form has too many fields") from exc
    return {name: values[0] for name, values in fields.items()}
