"""HTML form bodies (multipart/form-data and urlencoded), parsed without python-multipart (not installed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from email.message import Message
from urllib.parse import parse_qsl


@dataclass
class Form:
    """Text fields (a `name[]` field collects into a list under `name`) and at most one file field."""

    fields: dict[str, str | list[str]] = field(default_factory=dict)
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)

    def add(self, name: str, value: str) -> None:
        if name.endswith("[]"):
            values = self.fields.setdefault(name[:-2], [])
            if isinstance(values, list):
                values.append(value)
            return
        self.fields[name] = value

    def text(self, name: str, default: str = "") -> str:
        value = self.fields.get(name, default)
        return ",".join(value) if isinstance(value, list) else value


def parse_form(content_type: str, body: bytes) -> Form:
    """Parse a form body; ValueError when it is neither multipart nor urlencoded, or is broken."""
    header = Message()
    header["content-type"] = content_type
    kind = header.get_content_type()
    form = Form()
    if kind == "application/x-www-form-urlencoded":
        for name, value in parse_qsl(body.decode(), keep_blank_values=True):
            form.add(name, value)
        return form
    if kind != "multipart/form-data":
        raise ValueError(f"expected a form body, got {kind}")
    boundary = header.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        raise ValueError("multipart body without a boundary")
    delimiter = b"--" + boundary.encode()
    sections = body.split(delimiter)
    if len(sections) < 2:
        raise ValueError("multipart body without parts")
    for section in sections[1:]:
        if section.startswith(b"--"):
            break
        head, sep, data = section.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if not sep:
            raise ValueError("multipart part without headers")
        _add_part(form, head.decode("utf-8", "replace"), data.removesuffix(b"\r\n"))
    return form


def _add_part(form: Form, head: str, data: bytes) -> None:
    headers = Message()
    for line in head.split("\r\n"):
        name, _, value = line.partition(":")
        if value:
            headers[name.strip()] = value.strip()
    name = headers.get_param("name", header="content-disposition")
    if not isinstance(name, str):
        raise ValueError("multipart part without a name")
    filename = headers.get_param("filename", header="content-disposition")
    if isinstance(filename, str):
        form.files[name] = (filename, data)
    else:
        form.add(name, data.decode("utf-8"))
