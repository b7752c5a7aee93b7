"""The console's anonymise page in headless Chromium against a real server: upload a photo, choose a method, see
the covered preview and get a download link."""

from __future__ import annotations

from helpers import chromium_page, need_data


def test_console_anonymise_preview_and_download(live_server, service):
    photo = need_data("video", "face_recognition", "lin-manuel-miranda.png")
    with chromium_page() as page:
        page.goto(live_server + "/console/")
        page.fill("#key", service[3])  # a reader key may anonymise
        page.click("#signin")
        page.wait_for_selector("#app:not([hidden])")
        page.set_input_files("#anonymize-file", str(photo))
        page.select_option("#anonymize-method", "solid")
        page.click("#anonymize-btn")
        page.wait_for_selector("#anonymize-preview:not([hidden])", timeout=60_000)
        page.wait_for_function("document.getElementById('anonymize-preview').complete && "
                               "document.getElementById('anonymize-preview').naturalWidth > 0")
        assert page.text_content("#anonymize-result") == "1 face(s), 1 covered"
        assert page.get_attribute("#anonymize-download", "href").startswith("blob:")
        # the face's centre is black in the preview (solid cover), a corner of the photo is not
        centre, corner = page.evaluate("""() => {
            const img = document.getElementById('anonymize-preview');
            const c = document.createElement('canvas');
            c.width = img.naturalWidth; c.height = img.naturalHeight;
            const g = c.getContext('2d'); g.drawImage(img, 0, 0);
            const at = (x, y) => Array.from(g.getImageData(x, y, 1, 1).data.slice(0, 3));
            return [at(420, 300), at(5, 5)];
        }""")
        assert max(centre) < 12 and max(corner) > 20, (centre, corner)
