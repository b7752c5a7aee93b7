"""The web console end to end in headless Chromium against a real uvicorn server: sign in with a key, enrol a
person from a photo, identify another photo of them and see their name drawn on the canvas, delete them."""

from __future__ import annotations

import pytest
from helpers import chromium_page


@pytest.fixture(scope="module")
def browser_page():
    with chromium_page() as page:
        page.on("dialog", lambda dialog: dialog.accept())
        yield page


def test_console_enrol_identify_delete(browser_page, live_server, service, people_photos):
    page = browser_page
    import facelens

    name = sorted(people_photos)[1]
    # photos of this person alone (a photo with another face of similar size is refused unless a face is chosen)
    photos = [p for p in people_photos[name] if len(facelens.detect(str(p)).faces) == 1]
    assert len(photos) >= 7
    page.goto(live_server + "/")
    assert page.title() == "facelens console"

    page.fill("#key", "fl_000000000000_wrong")
    page.click("#signin")
    page.wait_for_selector("#status.error")
    assert "Sign-in failed" in page.text_content("#status") and page.is_hidden("#app")

    page.fill("#key", service[2])  # admin key
    page.click("#signin")
    page.wait_for_selector("#app:not([hidden])")
    assert "admin" in page.text_content("#whoami")

    page.fill("#new-gallery", "console")
    page.click("#create-gallery")
    page.wait_for_function("document.getElementById('gallery').value === 'console'")

    page.fill("#person-name", name)
    page.set_input_files("#enroll-files", [str(photos[0]), str(photos[1])])
    page.click("#enroll-btn")
    page.wait_for_function("document.getElementById('enroll-result').textContent.startsWith('Enrolled')",
                           timeout=60_000)
    assert "Enrolled 2 face(s)" in page.text_content("#enroll-result")
    page.wait_for_selector(f"#people tr[data-name='{name}']")
    assert page.text_content(f"#people tr[data-name='{name}'] td:nth-child(2)") == "2"

    page.set_input_files("#identify-file", str(photos[6]))
    page.click("#identify-btn")
    page.wait_for_function("document.getElementById('identify-canvas').dataset.labels !== ''", timeout=60_000)
    assert page.get_attribute("#identify-canvas", "data-labels") == name
    assert page.text_content("#identify-results li.known").startswith(name)
    # the box and the name label are painted on the canvas: pixels in the known colour (#00c853) along the box
    painted = page.evaluate("""() => {
        const c = document.getElementById('identify-canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i] < 10 && d[i + 1] > 190 && d[i + 1] < 210 && d[i + 2] > 75 && d[i + 2] < 95) n++;
        return [c.width, n];
    }""")
    assert painted[0] == 250 and painted[1] > 300

    page.click(f"#people tr[data-name='{name}'] button.delete-person")
    page.wait_for_selector(f"#people tr[data-name='{name}']", state="detached")
    assert "Deleted" in page.text_content("#status")


def test_console_webcam_capture_is_uploaded(browser_page, live_server, service):
    """The webcam path: getUserMedia → capture a frame → enrol. Chromium's fake camera shows a test pattern, so the
    server answers that the captured frame has no face (proof the frame reached the library)."""
    page = browser_page
    page.goto(live_server + "/console/")
    page.fill("#key", service[2])
    page.click("#signin")
    page.wait_for_selector("#app:not([hidden])")
    page.click("#enroll-camera")
    page.wait_for_selector("#enroll-cam:not([hidden])")
    page.wait_for_function("document.getElementById('enroll-video').videoWidth > 0")
    page.click("#enroll-snap")
    page.wait_for_function("document.getElementById('enroll-captures').textContent.includes('1 photo')")
    page.fill("#person-name", "camera-person")
    page.click("#enroll-btn")
    page.wait_for_function("document.getElementById('enroll-result').textContent.startsWith('Enrolled')",
                           timeout=60_000)
    result = page.text_content("#enroll-result")
    assert "Enrolled 0 face(s)" in result and "camera-1.jpg: " in result and "no face" in result
