"""The playground as a user drives it: generate from an uploaded first frame, watch, play, list,
cancel; the browser-side image rules; the operators' view for admin keys only."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from server.api.web.sample import SAMPLE_PATH
from tests.e2e.browser.conftest import ADMIN_KEY, PHONE, USER_KEY, Visit
from tests.live_server import LiveServer
from tests.videos import data_uri, make_image, make_video

I2V = "happyhorse-1.0-i2v"
T2V = "happyhorse-1.0-t2v"
R2V = "happyhorse-1.0-r2v"
EDIT = "happyhorse-1.0-video-edit"
CREATE = "/api/v1/services/aigc/video-generation/video-synthesis"

pytestmark = pytest.mark.slow


def api(server: LiveServer, key: str) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}", "X-DashScope-Async": "enable"}
    return httpx.Client(base_url=server.base_url, headers=headers, timeout=30)


def watch_status(visit: Visit, timeout_s: float = 90) -> list[str]:
    """Every text the live status region showed until the task ended, as a user would see it."""
    status = visit.page.get_by_role("status")
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = status.inner_text()
        if not seen or seen[-1] != text:
            seen.append(text)
        if text.startswith(("SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN")):
            return seen
        time.sleep(0.05)
    raise AssertionError(f"the task did not end in {timeout_s} s: {seen}")


def test_generate_from_an_uploaded_first_frame_watch_play_and_list(visit: Visit) -> None:
    page = visit.page
    page.goto(visit.server.base_url + "/")
    # Keyboard only: the key, the model, the file, the settings, then Generate.
    visit.tab_to("#api-key")
    page.keyboard.type(ADMIN_KEY)
    page.keyboard.press("Enter")
    page.wait_for_selector("#model option", state="attached")
    visit.tab_to("#model")
    page.get_by_label("Model", exact=True).select_option(I2V)
    visit.tab_to("#prompt")
    page.keyboard.type("the horse is galloping toward the fence, its mane streaming in the wind")
    visit.tab_to("#first-frame")
    # The picture the README's screenshot shows.
    visit.choose_file_by_keyboard("#first-frame").set_files(str(SAMPLE_PATH))
    assert page.get_by_role("img", name="first frame: sample.jpg").is_visible()
    page.get_by_label("Resolution", exact=True).select_option("720P")
    page.get_by_label("Duration (s)", exact=True).select_option("3")
    visit.tab_to("#generate-button")
    with page.expect_response(lambda r: r.url.endswith(CREATE)) as created:
        page.keyboard.press("Enter")
    task_id = created.value.json()["output"]["task_id"]

    seen = watch_status(visit)
    assert seen[-1].startswith("SUCCEEDED"), seen
    assert any(s.startswith("RUNNING step ") and " of " in s for s in seen), seen
    assert seen.index(next(s for s in seen if s.startswith("RUNNING"))) < len(seen) - 1

    with api(visit.server, ADMIN_KEY) as client:
        video_url = client.get(f"/api/v1/tasks/{task_id}").json()["output"]["video_url"]
    video = page.locator("#result-video")
    assert video.get_attribute("src") == video_url
    assert page.get_by_role("link", name="Download").get_attribute("href") == video_url
    video.evaluate("v => v.readyState >= 1 || new Promise(ok => v.addEventListener('loadedmetadata', ok))")
    assert video.evaluate("v => v.duration") == pytest.approx(3.0, abs=0.05)
    video.evaluate("v => { v.muted = true; return v.play(); }")
    page.wait_for_function("() => document.querySelector('#result-video').currentTime > 0.3", timeout=10_000)

    row = page.locator(f'#tasks-table tr[data-task-id="{task_id}"]')
    row.locator("text=SUCCEEDED").wait_for()
    assert I2V in row.inner_text()
    assert row.get_by_role("link", name=f"Video of task {task_id}").get_attribute("href") == video_url
    visit.assert_accessible()
    visit.screenshot()


def api_message(server: LiveServer, model: str, media_type: str, path: Path | None) -> str:
    """What the API answers for `path` sent as the only `media_type` of a `model` task: images
    as a data URI, videos through the temporary-upload flow (a data URI is for images only)."""
    media, extra = [], {}
    with api(server, USER_KEY) as client:
        if path is not None and media_type == "video":
            policy = client.get("/api/v1/uploads", params={"action": "getPolicy", "model": model}).json()[
                "data"
            ]
            key = f"{policy['upload_dir']}/{path.name}"
            form = {
                "OSSAccessKeyId": policy["oss_access_key_id"],
                "Signature": policy["signature"],
                "policy": policy["policy"],
                "key": key,
                "success_action_status": "200",
            }
            assert (
                httpx.post(policy["upload_host"], data=form, files={"file": path.read_bytes()}).status_code
                == 200
            )
            media, extra = (
                [{"type": media_type, "url": f"oss://{key}"}],
                {"X-DashScope-OssResourceResolve": "enable"},
            )
        elif path is not None:
            media = [{"type": media_type, "url": data_uri(path.read_bytes())}]
        body = {"model": model, "input": {"prompt": "the horse is turning its head", "media": media}}
        answer = client.post(CREATE, json=body, headers=extra)
    assert answer.status_code == 400, answer.text
    return str(answer.json()["message"])


@pytest.mark.parametrize(
    ("model", "label", "media_type", "name", "data"),
    [
        pytest.param(
            I2V, "First frame", "first_frame", "too-small.png", make_image(200, 200), id="too-small"
        ),
        pytest.param(
            I2V, "First frame", "first_frame", "too-wide.jpg", make_image(1000, 300, "JPEG"), id="too-wide"
        ),
        pytest.param(
            I2V, "First frame", "first_frame", "not-an-image.png", b"GIF89a, not JPEG", id="not-an-image"
        ),
        pytest.param(
            EDIT, "Video", "video", "narrow.mp4", make_video(480, 300, 3.5), id="edit-video-short-side"
        ),
        pytest.param(R2V, "Reference images", "reference_image", None, None, id="r2v-no-reference"),
    ],
)
def test_bad_media_is_refused_in_the_browser_with_the_api_message(
    visit: Visit,
    tmp_path: Path,
    model: str,
    label: str,
    media_type: str,
    name: str | None,
    data: bytes | None,
) -> None:
    path = None
    if name is not None and data is not None:
        path = tmp_path / name
        path.write_bytes(data)
    expected = api_message(visit.server, model, media_type, path)

    visit.open(USER_KEY)
    page = visit.page
    page.get_by_label("Model", exact=True).select_option(model)
    page.get_by_label("Prompt", exact=True).fill("the horse is turning its head")
    if path is not None:
        page.get_by_label(label, exact=True).set_input_files(str(path))
    visit.requests.clear()
    page.get_by_role("button", name="Generate").click()
    alert = page.get_by_role("alert")
    alert.filter(has_text=expected).wait_for()
    assert alert.inner_text() == f"InvalidParameter: {expected}"
    assert page.get_by_label(label, exact=True).get_attribute("aria-invalid") == "true"
    sent = [url for url in visit.requests if not url.startswith(("blob:", "data:"))]  # blob: is local
    assert sent == [], "nothing may be sent before the media pass the rules"
    assert page.get_by_role("status").inner_text() == "No task yet."
    visit.assert_accessible()
    visit.screenshot()


def test_the_printed_link_fills_in_the_key_and_try_a_sample_fills_the_first_frame(visit: Visit) -> None:
    page = visit.page
    page.goto(f"{visit.server.base_url}/#key={USER_KEY}")  # what `paddock serve` prints
    page.wait_for_selector("#model option", state="attached")
    assert page.get_by_label("API key", exact=True).input_value() == USER_KEY
    assert "#" not in page.url  # the key leaves the address bar (and so the history) at once
    assert all("key=" not in url for url in visit.requests)
    page.get_by_label("Model", exact=True).select_option(I2V)
    page.get_by_role("button", name="Try a sample").click()
    page.get_by_role("img", name="first frame: sample.jpg").wait_for()
    assert page.get_by_label("First frame", exact=True).evaluate("input => input.files[0].size") > 10_000
    visit.screenshot()


def test_operators_view_with_an_admin_key_only_and_a_phone_wide_page(visit: Visit) -> None:
    page = visit.page
    page.set_viewport_size(PHONE)
    visit.open(ADMIN_KEY)
    operators = page.get_by_role("region", name="Operators")
    operators.wait_for()
    page.wait_for_function("() => /^\\d+$/.test(document.querySelector('#op-depth').textContent)")
    assert page.locator("#op-workers").inner_text() == "1"  # the in-process worker announced itself
    assert "happyhorse-1.0-i2v" in page.locator("#op-worker-list").inner_text()
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    visit.assert_accessible()
    visit.screenshot("-admin")

    with page.expect_response(
        lambda r: r.url.endswith("/web/models") and r.request.headers["authorization"] == f"Bearer {USER_KEY}"
    ):
        visit.open(USER_KEY)
    page.locator("#operator").wait_for(state="hidden")
    with api(visit.server, USER_KEY) as client:
        refused = client.get("/web/operator")
    assert refused.status_code == 403 and refused.json()["code"] == "AccessDenied"
    visit.screenshot("-user")


def test_a_wrong_key_is_named_and_shows_nothing(visit: Visit) -> None:
    visit.open(ADMIN_KEY)
    page = visit.page
    page.get_by_role("region", name="Operators").wait_for()
    page.get_by_label("API key", exact=True).fill("sk-not-a-key")
    page.get_by_label("API key", exact=True).press("Enter")
    page.get_by_text("InvalidApiKey: Invalid API-key provided.").wait_for()
    assert page.locator("#model option").count() == 0
    assert not page.locator("#operator").is_visible()
    assert page.locator("#tasks-table tbody tr").count() == 0
    visit.assert_accessible()
    visit.screenshot()


def test_cancel_a_pending_task_from_the_table(visit: Visit) -> None:
    # One job at a time: a long one runs, so the next one waits as PENDING (runs last: the long
    # job keeps the worker busy until the server stops).
    with api(visit.server, USER_KEY) as client:
        long = {
            "model": T2V,
            "input": {"prompt": "a long ride"},
            "parameters": {"resolution": "1080P", "duration": 15},
        }
        short = {
            "model": T2V,
            "input": {"prompt": "waiting"},
            "parameters": {"resolution": "720P", "duration": 3},
        }
        assert client.post(CREATE, json=long).status_code == 200
        pending = client.post(CREATE, json=short).json()["output"]["task_id"]
    visit.open(USER_KEY)
    page = visit.page
    row = page.locator(f'#tasks-table tr[data-task-id="{pending}"]')
    cancel = row.get_by_role("button", name=f"Cancel task {pending}")
    cancel.focus()
    page.keyboard.press("Enter")
    row.locator("text=CANCELED").wait_for()
    with api(visit.server, USER_KEY) as client:
        assert client.get(f"/api/v1/tasks/{pending}").json()["output"]["task_status"] == "CANCELED"
    assert row.get_by_role("button").count() == 0
    visit.assert_accessible()
    visit.screenshot()
