"""uvicorn's HTTP protocols with the DashScope error body on the parser's own 400.

A request the HTTP parser refuses never reaches the app: a request line or header block over the
parser's size limit, a bare CR or a NUL in a header, a malformed request line. uvicorn answers
those itself with a plain-text `Invalid HTTP request received.`; these subclasses answer with
`{"request_id", "code", "message"}` instead (API.md §4), and still close the connection, since
the stream cannot be parsed any further. `paddock serve` and `paddock api` run uvicorn with
`http=http_protocol()`.
"""

from __future__ import annotations

import importlib.util
import json
import uuid

from uvicorn.protocols.http.h11_impl import H11Protocol

from server.api.schemas import error_body

MESSAGE = "The HTTP request is malformed (request line, header syntax or size)."


def malformed_request_body() -> bytes:
    """The JSON body of the parser-level 400."""
    return json.dumps(error_body(str(uuid.uuid4()), "InvalidParameter", MESSAGE)).encode()


class JsonErrorH11Protocol(H11Protocol):
    """h11 (pure Python) with a JSON 400."""

    def send_400_response(self, msg: str) -> None:
        import h11

        body = malformed_request_body()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        for event in (
            h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
            h11.Data(data=body),
            h11.EndOfMessage(),
        ):
            self.transport.write(self.conn.send(event))
        self.transport.close()


def _httptools_protocol() -> type | None:
    """The httptools protocol with a JSON 400, when httptools is installed (uvicorn[standard])."""
    if importlib.util.find_spec("httptools") is None:
        return None
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class JsonErrorHttpToolsProtocol(HttpToolsProtocol):
        """httptools (llhttp, C) with a JSON 400."""

        def send_400_response(self, msg: str) -> None:
            body = malformed_request_body()
            head = [b"HTTP/1.1 400 Bad Request\r\n"]
            for name, value in self.server_state.default_headers:
                head.extend([name, b": ", value, b"\r\n"])
            head.extend(
                [
                    b"content-type: application/json\r\n",
                    b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                    b"connection: close\r\n\r\n",
                ]
            )
            self.transport.write(b"".join(head) + body)
            self.transport.close()

    return JsonErrorHttpToolsProtocol


def http_protocol() -> type:
    """The protocol class for `uvicorn.run(http=...)`: httptools when installed, else h11,
    as uvicorn's own `auto` would choose."""
    return _httptools_protocol() or JsonErrorH11Protocol
