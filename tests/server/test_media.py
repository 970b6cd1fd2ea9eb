"""server/media.py against a real local HTTP server, real Pillow images and real PyAV videos."""

from __future__ import annotations

import base64
import datetime
import io
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs, urlsplit

import av
import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from PIL import Image

from server.config import Settings
from server.errors import InvalidParameter, InvalidURL
from server.media import (
    EDIT_REFERENCE_RULE,
    EDIT_VIDEO_RULE,
    FIRST_FRAME_RULE,
    R2V_REFERENCE_RULE,
    FetchPolicy,
    ImageRule,
    MediaFetcher,
    VideoRule,
    decode_data_uri,
    inspect_image,
    inspect_video,
)
from tests.support.bigimages import bomb_png

DATA_INSPECTION = "InvalidParameter.DataInspection"
MAX_PIXELS = 100_000_000
FIELD = "input.media[0] (first_frame)"


# -- media made in code ---------------------------------------------------------------------------


def make_image(fmt: str, size: tuple[int, int] = (640, 480)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 80, 40)).save(buf, format=fmt)
    return buf.getvalue()


def make_video(
    *,
    seconds: float = 4,
    fps: int = 12,
    size: tuple[int, int] = (640, 360),
    container: str = "mp4",
    audio: bool = False,
    rotation: int = 0,
) -> bytes:
    buf = io.BytesIO()
    with av.open(buf, mode="w", format=container) as out:
        stream = out.add_stream("libx264", rate=fps, options={"preset": "ultrafast"})
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        if rotation:
            stream.set_display_rotation(rotation)
        astream = out.add_stream("aac", rate=16_000, layout="mono") if audio else None
        frame_data = np.zeros((size[1], size[0], 3), dtype=np.uint8)
        for i in range(round(seconds * fps)):
            frame_data[:] = (i * 5) % 255
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame_data, format="rgb24")))
        out.mux(stream.encode())
        if astream is not None:
            _write_silence(out, astream, seconds)
    return buf.getvalue()


def _write_silence(
    out: av.container.OutputContainer, stream: av.audio.stream.AudioStream, seconds: float
) -> None:
    for n in range(int(seconds * 16_000 / 1024)):
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 1024), dtype=np.float32), format="fltp", layout="mono"
        )
        frame.sample_rate = 16_000
        frame.pts = n * 1024
        frame.time_base = Fraction(1, 16_000)
        out.mux(stream.encode(frame))
    out.mux(stream.encode())


PNG = make_image("PNG")
JPEG = make_image("JPEG")
WEBP = make_image("WEBP")


@pytest.fixture(scope="module")
def video() -> bytes:
    return make_video()


# -- a real HTTP server ----------------------------------------------------------------------------

BIG = 64 * 1024


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    routes: ClassVar[dict[str, bytes]] = {
        "/img.png": PNG,
        "/img.jpg": PNG,
        "/photo.jpg": JPEG,
        "/img.webp": WEBP,
    }

    def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path in self.routes:
            return self._send(200, self.routes[url.path], host=self.headers.get("Host", ""))
        handler = getattr(self, "_route_" + url.path.strip("/").split("/")[0], None)
        if handler is None:
            return self._send(404, b"not found")
        return handler(url)

    def _send(self, status: int, body: bytes, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(f"X-{name}", value)
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _route_redirect(self, url: object) -> None:
        self._redirect(parse_qs(urlsplit(self.path).query)["to"][0])

    def _route_loop(self, url: object) -> None:
        self._redirect("/loop")

    def _route_chain(self, url: object) -> None:
        left = int(self.path.rsplit("/", 1)[1])
        self._redirect(f"/chain/{left - 1}" if left > 0 else "/img.png")

    def _route_host(self, url: object) -> None:
        # Echo the Host header: shows a pinned request still names the original host.
        self._send(200, self.headers.get("Host", "").encode())

    def _route_chunked(self, url: object) -> None:
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for _ in range(4):
            piece = b"x" * (BIG // 2)
            self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")

    def _route_declared(self, url: object) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(10 * BIG))
        self.end_headers()
        self.wfile.write(b"x" * 16)  # then hang up: the client must not wait for the rest

    def _route_slow(self, url: object) -> None:
        time.sleep(1.0)
        self._send(200, PNG)

    def _route_empty(self, url: object) -> None:
        self._send(200, b"")


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients hanging up early is what several tests do on purpose


@dataclass
class Server:
    host: str
    port: int

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"


def _serve(host: str) -> Iterator[Server]:
    httpd = QuietServer((host, 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield Server(host, httpd.server_address[1])
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    yield from _serve("127.0.0.1")


@pytest.fixture(scope="module")
def server2() -> Iterator[Server]:
    # Linux routes all of 127/8 to lo: a second "host" that an allow-list can name on its own.
    yield from _serve("127.0.0.2")


def fixed_resolver(table: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    async def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError(f"unknown host {host}")
        return table[host]

    return resolve


async def fetch(
    fetcher: MediaFetcher, url: str, *, max_bytes: int = 1_000_000, data_uri: bool = True
) -> bytes:
    return await fetcher.fetch(url, max_bytes=max_bytes, field=FIELD, allow_data_uri=data_uri)


@pytest.fixture
async def public() -> Iterator[MediaFetcher]:
    f = MediaFetcher(FetchPolicy())
    yield f
    await f.aclose()


@pytest.fixture
async def private() -> Iterator[MediaFetcher]:
    f = MediaFetcher(FetchPolicy(allow_private=True, timeout_s=0.5, max_redirects=3))
    yield f
    await f.aclose()


# -- fetch: SSRF guard -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/img.png",
        "http://localhost:{port}/img.png",
        "http://[::1]:{port}/img.png",
        "http://[::ffff:127.0.0.1]:{port}/img.png",
        "http://2130706433:{port}/img.png",  # 127.0.0.1 as one decimal number
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/",
        "http://[fd00::1]/",
        "http://0.0.0.0:{port}/img.png",
        "http://100.64.0.1/",
        "http://10.1.2.3/",
        "http://192.168.1.1/",
        "http://172.16.0.1/",
    ],
)
async def test_non_public_addresses_refused(public: MediaFetcher, server: Server, url: str) -> None:
    with pytest.raises(InvalidURL) as err:
        await fetch(public, url.format(port=server.port))
    assert err.value.code == "InvalidURL"
    assert FIELD in err.value.message


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://example.com/a.png", "gopher://x/", "oss://b/k.png"]
)
async def test_other_schemes_refused(public: MediaFetcher, url: str) -> None:
    with pytest.raises(InvalidURL, match="scheme"):
        await fetch(public, url)


async def test_credentials_in_url_refused(public: MediaFetcher) -> None:
    with pytest.raises(InvalidURL, match="credentials"):
        await fetch(public, "http://user:pw@example.com/a.png")


async def test_redirect_to_loopback_refused(server: Server, server2: Server) -> None:
    f = MediaFetcher(FetchPolicy(allow_hosts=("127.0.0.2",)))
    try:
        assert await fetch(f, server2.url("/img.png")) == PNG  # the allowed host itself works
        with pytest.raises(InvalidURL):
            await fetch(f, server2.url(f"/redirect?to={server.url('/img.png')}"))
        with pytest.raises(InvalidURL):
            await fetch(f, server2.url("/redirect?to=http://169.254.169.254/latest/meta-data/"))
        with pytest.raises(InvalidURL, match="scheme"):
            await fetch(f, server2.url("/redirect?to=file:///etc/passwd"))
    finally:
        await f.aclose()


async def test_injected_resolver_checked(server: Server) -> None:
    resolver = fixed_resolver({"evil.example": ["10.0.0.5"], "public.example": ["127.0.0.1"]})
    f = MediaFetcher(FetchPolicy(allow_hosts=("public.example",)), resolver=resolver)
    try:
        with pytest.raises(InvalidURL):
            await fetch(f, f"http://evil.example:{server.port}/img.png")
        # Pinned to the checked IP, yet the server sees the name the client wrote.
        body = await fetch(f, f"http://public.example:{server.port}/host")
        assert body == f"public.example:{server.port}".encode()
    finally:
        await f.aclose()


async def test_any_bad_address_refuses_the_host(server: Server) -> None:
    # DNS answering one public and one private address must not be a way in.
    resolver = fixed_resolver({"mixed.example": ["93.184.216.34", "127.0.0.1"]})
    f = MediaFetcher(FetchPolicy(), resolver=resolver)
    try:
        with pytest.raises(InvalidURL):
            await fetch(f, f"http://mixed.example:{server.port}/img.png")
    finally:
        await f.aclose()


async def test_allow_hosts_cidr(server: Server) -> None:
    f = MediaFetcher(FetchPolicy(allow_hosts=("127.0.0.0/8",)))
    try:
        assert await fetch(f, server.url("/img.png")) == PNG
    finally:
        await f.aclose()


async def test_unresolvable_host_is_download_failure() -> None:
    f = MediaFetcher(FetchPolicy(), resolver=fixed_resolver({}))
    try:
        with pytest.raises(InvalidParameter) as err:
            await fetch(f, "http://nowhere.example/a.png")
        assert err.value.code == DATA_INSPECTION
    finally:
        await f.aclose()


async def test_resolved_once_per_hop(server: Server) -> None:
    # A rebinding DNS answers safely once, then privately: the second answer must never be asked for.
    calls: list[str] = []

    async def rebinding(host: str, port: int) -> list[str]:
        calls.append(host)
        return ["127.0.0.1"] if len(calls) == 1 else ["10.0.0.5"]

    f = MediaFetcher(FetchPolicy(allow_hosts=("127.0.0.1",)), resolver=rebinding)
    try:
        assert await fetch(f, f"http://rebind.example:{server.port}/img.png") == PNG
        assert calls == ["rebind.example"]
    finally:
        await f.aclose()


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, list[str], str]]:
    """An HTTPS server on 127.0.0.1 with a self-signed certificate for `public.example`."""
    cert_path, key_path = _self_signed("public.example", tmp_path_factory.mktemp("tls"))
    seen_sni: list[str] = []
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert_path, key_path)
    ctx.sni_callback = lambda sock, name, _ctx: seen_sni.append(name or "")  # type: ignore[assignment]
    httpd = QuietServer(("127.0.0.1", 0), Handler)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield Server("127.0.0.1", httpd.server_address[1]), seen_sni, str(cert_path)
    finally:
        httpd.shutdown()
        httpd.server_close()


def _self_signed(name: str, folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


async def test_https_pinned_with_sni(
    tls_server: tuple[Server, list[str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    srv, seen_sni, cert = tls_server
    monkeypatch.setenv("SSL_CERT_FILE", cert)  # trust the test certificate, as an operator CA would be
    table = {"public.example": ["127.0.0.1"], "other.example": ["127.0.0.1"]}
    f = MediaFetcher(
        FetchPolicy(allow_hosts=("public.example", "other.example")), resolver=fixed_resolver(table)
    )
    try:
        body = await fetch(f, f"https://public.example:{srv.port}/host")
        assert body == f"public.example:{srv.port}".encode()
        assert seen_sni[-1] == "public.example"  # SNI carries the name though we dialled the IP
        # The certificate is still verified against the name the client wrote.
        with pytest.raises(InvalidParameter) as err:
            await fetch(f, f"https://other.example:{srv.port}/host")
        assert err.value.code == DATA_INSPECTION
    finally:
        await f.aclose()


# -- fetch: transfers ------------------------------------------------------------------------------


@pytest.mark.parametrize("path,body", [("/img.png", PNG), ("/photo.jpg", JPEG), ("/img.webp", WEBP)])
async def test_allow_private_fetches(private: MediaFetcher, server: Server, path: str, body: bytes) -> None:
    assert await fetch(private, server.url(path)) == body


async def test_redirects_followed(private: MediaFetcher, server: Server) -> None:
    assert await fetch(private, server.url("/chain/2")) == PNG  # exactly max_redirects hops


async def test_too_many_redirects(private: MediaFetcher, server: Server) -> None:
    with pytest.raises(InvalidParameter, match="redirects") as err:
        await fetch(private, server.url("/loop"))
    assert err.value.code == DATA_INSPECTION


async def test_size_cap_while_streaming(private: MediaFetcher, server: Server) -> None:
    assert len(await fetch(private, server.url("/chunked"), max_bytes=BIG * 2)) == BIG * 2
    with pytest.raises(InvalidParameter, match="at most") as err:
        await fetch(private, server.url("/chunked"), max_bytes=BIG)
    assert err.value.code == "InvalidParameter"


async def test_declared_length_over_cap_refused_early(private: MediaFetcher, server: Server) -> None:
    with pytest.raises(InvalidParameter, match="at most") as err:
        await fetch(private, server.url("/declared"), max_bytes=BIG)
    assert err.value.code == "InvalidParameter"


async def test_timeout(private: MediaFetcher, server: Server) -> None:
    with pytest.raises(InvalidParameter, match="timed out") as err:
        await fetch(private, server.url("/slow"))
    assert err.value.code == DATA_INSPECTION


@pytest.mark.parametrize("path,detail", [("/missing", "HTTP 404"), ("/empty", "empty")])
async def test_bad_responses(private: MediaFetcher, server: Server, path: str, detail: str) -> None:
    with pytest.raises(InvalidParameter, match=detail) as err:
        await fetch(private, server.url(path))
    assert err.value.code == DATA_INSPECTION


async def test_connection_refused(private: MediaFetcher, server: Server) -> None:
    with pytest.raises(InvalidParameter) as err:
        await fetch(private, "http://127.0.0.1:1/x.png")
    assert err.value.code == DATA_INSPECTION


def test_policy_from_settings() -> None:
    settings = Settings(
        media_allow_hosts="cdn.internal, 10.0.0.0/8", media_timeout_s=7, media_max_redirects=2
    )
    policy = FetchPolicy.from_settings(settings)
    assert policy == FetchPolicy(
        allow_private=False, allow_hosts=("cdn.internal", "10.0.0.0/8"), timeout_s=7, max_redirects=2
    )


# -- data URIs -------------------------------------------------------------------------------------


async def test_data_uri_sniffed_by_content(public: MediaFetcher) -> None:
    data = await fetch(public, "data:image/jpeg;base64," + base64.b64encode(PNG).decode())
    assert data == PNG
    assert inspect_image(data, FIRST_FRAME_RULE, field=FIELD, max_pixels=MAX_PIXELS).format == "png"


async def test_data_uri_refused_for_video(public: MediaFetcher) -> None:
    with pytest.raises(InvalidURL, match="data URI"):
        await fetch(public, "data:video/mp4;base64,AAAA", data_uri=False)


@pytest.mark.parametrize(
    "uri,match",
    [
        ("data:image/png,rawbytes", "base64"),
        ("data:text/plain;base64,aGVsbG8=", "image"),
        ("data:image/png;base64,!!!notbase64", "invalid base64"),
        ("data:image/png;base64", "malformed"),
        ("data:image/png;base64,", "empty"),
    ],
)
def test_malformed_data_uris(uri: str, match: str) -> None:
    with pytest.raises(InvalidParameter, match=match):
        decode_data_uri(uri, max_bytes=1000, field=FIELD)


def test_data_uri_size_cap() -> None:
    uri = "data:image/png;base64," + base64.b64encode(b"x" * 2000).decode()
    with pytest.raises(InvalidParameter, match="at most"):
        decode_data_uri(uri, max_bytes=1000, field=FIELD)
    wrapped = "data:image/png;base64," + base64.encodebytes(b"x" * 500).decode()  # line-wrapped
    assert decode_data_uri(wrapped, max_bytes=1000, field=FIELD) == b"x" * 500


# -- images ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("data,fmt", [(PNG, "png"), (JPEG, "jpeg"), (WEBP, "webp")])
def test_image_accepted(data: bytes, fmt: str) -> None:
    info = inspect_image(data, FIRST_FRAME_RULE, field=FIELD, max_pixels=MAX_PIXELS)
    assert (info.format, info.content_type, info.width, info.height) == (fmt, f"image/{fmt}", 640, 480)


def test_bomb_refused_before_decoding() -> None:
    data = bomb_png()
    assert len(data) < 200
    started = time.perf_counter()
    with pytest.raises(InvalidParameter, match="pixels") as err:
        inspect_image(data, FIRST_FRAME_RULE, field=FIELD, max_pixels=MAX_PIXELS)
    assert time.perf_counter() - started < 0.5  # decoding 2.5 G pixels would take far longer
    assert "50000x50000" in err.value.message


def test_webp_pixel_cap_checked_before_pillow() -> None:
    with pytest.raises(InvalidParameter, match="pixels"):
        inspect_image(WEBP, FIRST_FRAME_RULE, field=FIELD, max_pixels=640 * 480 - 1)


def test_pixel_cap_is_ours_not_pillows() -> None:
    # Pillow's global limit stays untouched, and our cap applies exactly at max_pixels.
    before = Image.MAX_IMAGE_PIXELS
    with pytest.raises(
        InvalidParameter, match=r"640x480 \(307200 pixels\), more than the 307199 pixels allowed"
    ):
        inspect_image(PNG, FIRST_FRAME_RULE, field=FIELD, max_pixels=640 * 480 - 1)
    assert inspect_image(PNG, FIRST_FRAME_RULE, field=FIELD, max_pixels=640 * 480).width == 640
    assert before == Image.MAX_IMAGE_PIXELS


@pytest.mark.parametrize(
    "data",
    [make_image("GIF"), make_image("BMP"), b"hello, I am text", b""],
    ids=["gif", "bmp", "text", "empty"],
)
def test_other_formats_refused(data: bytes) -> None:
    with pytest.raises(InvalidParameter, match="must be JPEG, PNG or WEBP") as err:
        inspect_image(data, FIRST_FRAME_RULE, field=FIELD, max_pixels=MAX_PIXELS)
    assert err.value.code == "InvalidParameter"


@pytest.mark.parametrize("data", [PNG[: len(PNG) // 2], JPEG[: len(JPEG) // 3]], ids=["png", "jpeg"])
def test_truncated_image_refused(data: bytes) -> None:
    with pytest.raises(InvalidParameter, match="could not be decoded"):
        inspect_image(data, FIRST_FRAME_RULE, field=FIELD, max_pixels=MAX_PIXELS)


@pytest.mark.parametrize(
    "rule,size,match",
    [
        (
            FIRST_FRAME_RULE,
            (200, 600),
            r"\(first_frame\): image width and height must be at least 300 px, got 200x600",
        ),
        (FIRST_FRAME_RULE, (1000, 300), r"aspect ratio .* between 1:2.5 and 2.5:1, got 1000x300"),
        (FIRST_FRAME_RULE, (300, 1000), r"aspect ratio .* got 300x1000"),
        (
            EDIT_REFERENCE_RULE,
            (299, 400),
            r"\(reference_image\): image width and height must be at least 300",
        ),
        (
            R2V_REFERENCE_RULE,
            (399, 800),
            r"\(reference_image\): image short side must be at least 400 px, got 399x800",
        ),
    ],
)
def test_image_rule_violations(rule: ImageRule, size: tuple[int, int], match: str) -> None:
    with pytest.raises(InvalidParameter, match=match) as err:
        inspect_image(make_image("PNG", size), rule, field="input.media[0]", max_pixels=MAX_PIXELS)
    assert err.value.code == "InvalidParameter"


def test_image_rule_edges_pass() -> None:
    for size in [(300, 300), (750, 300), (300, 750)]:
        inspect_image(make_image("PNG", size), FIRST_FRAME_RULE, field=FIELD, max_pixels=MAX_PIXELS)
    # r2v states no aspect rule, and no minimum beyond the short side.
    info = inspect_image(
        make_image("PNG", (400, 2000)), R2V_REFERENCE_RULE, field=FIELD, max_pixels=MAX_PIXELS
    )
    assert (info.width, info.height) == (400, 2000)


def test_image_size_rule() -> None:
    with pytest.raises(InvalidParameter, match=r"file size must be at most"):
        inspect_image(PNG, ImageRule(max_bytes=100), field=FIELD, max_pixels=MAX_PIXELS)


def test_exif_rotation_reported() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90°: shown as portrait
    buf = io.BytesIO()
    Image.new("RGB", (640, 480)).save(buf, format="JPEG", exif=exif)
    info = inspect_image(buf.getvalue(), FIRST_FRAME_RULE, field=FIELD, max_pixels=MAX_PIXELS)
    assert (info.width, info.height) == (480, 640)


# -- videos ----------------------------------------------------------------------------------------


def test_video_accepted(video: bytes) -> None:
    info = inspect_video(video, EDIT_VIDEO_RULE, field="input.media[0] (video)")
    assert (info.format, info.content_type, info.width, info.height) == ("mp4", "video/mp4", 640, 360)
    assert info.duration_s == pytest.approx(4, abs=0.1)
    assert info.fps == pytest.approx(12)
    assert info.has_audio is False


def test_mov_with_audio() -> None:
    info = inspect_video(make_video(container="mov", audio=True), EDIT_VIDEO_RULE, field="input.media[0]")
    assert (info.format, info.content_type, info.has_audio) == ("mov", "video/quicktime", True)


def test_rotated_video_reports_display_size() -> None:
    info = inspect_video(make_video(seconds=3, rotation=90), EDIT_VIDEO_RULE, field="input.media[0]")
    assert (info.width, info.height) == (360, 640)


@pytest.mark.parametrize(
    "kwargs,rule,match",
    [
        ({"seconds": 2}, EDIT_VIDEO_RULE, r"\(video\): video duration must be 3 to 60 s, got 2.00 s"),
        ({"fps": 5}, EDIT_VIDEO_RULE, r"frame rate must be more than 8 fps, got 5.00"),
        ({"size": (640, 300)}, EDIT_VIDEO_RULE, r"short side must be at least 360 px, got 640x300"),
        ({"size": (1280, 360)}, EDIT_VIDEO_RULE, r"aspect ratio .* between 1:2.5 and 2.5:1, got 1280x360"),
        ({}, VideoRule(max_long_side=600), r"long side must be at most 600 px, got 640x360"),
        ({}, VideoRule(max_duration_s=3.5), r"duration must be 3 to 3.5 s"),
        ({}, VideoRule(max_bytes=1000), r"file size must be at most"),
    ],
)
def test_video_rule_violations(kwargs: dict[str, object], rule: VideoRule, match: str) -> None:
    with pytest.raises(InvalidParameter, match=match) as err:
        inspect_video(make_video(**kwargs), rule, field="input.media[0]")  # type: ignore[arg-type]
    assert err.value.code == "InvalidParameter"


@pytest.mark.parametrize(
    "data,match",
    [
        (PNG, "must be MP4 or MOV"),
        (b"\x1aE\xdf\xa3" + b"\x00" * 64, "must be MP4 or MOV"),  # Matroska
        (b"\x00\x00\x00\x18ftypisom" + b"\x00" * 200, "could not be read"),
    ],
    ids=["png", "mkv", "garbage-ftyp"],
)
def test_not_a_video(data: bytes, match: str) -> None:
    with pytest.raises(InvalidParameter, match=match):
        inspect_video(data, EDIT_VIDEO_RULE, field="input.media[0]")


def test_truncated_video(video: bytes) -> None:
    with pytest.raises(InvalidParameter):
        inspect_video(video[: len(video) // 2], EDIT_VIDEO_RULE, field="input.media[0]")
