"""Each covering method changes the face's region and nothing outside it, on a real photo."""

from __future__ import annotations

import numpy as np
import pytest

from facelens.privacy.methods import METHODS, Cover


@pytest.fixture(scope="module")
def photo(data_dir):
    from facelens.io.image import decode_image

    return decode_image(data_dir / "video" / "face_recognition" / "lin-manuel-miranda.png")


BOX = np.array([200, 150, 400, 380], np.float32)


@pytest.mark.parametrize("method", METHODS)
def test_method_changes_only_the_grown_box(photo, method):
    replacement = np.full((50, 40, 3), (0, 200, 0), np.uint8)
    cover = Cover(method, margin=0.1, replacement=replacement)
    out = cover.apply(photo.copy(), [BOX])
    left, top, right, bottom = cover.region(BOX, photo.shape)
    assert (left, top, right, bottom) == (180, 127, 420, 403)
    changed = np.any(out != photo, axis=2)
    assert not changed[:top].any() and not changed[bottom:].any()
    assert not changed[:, :left].any() and not changed[:, right:].any()
    inside = changed[top:bottom, left:right]
    assert inside.mean() > (0.5 if method == "mask" else 0.8), method  # an ellipse leaves the box's corners
    if method == "mask":
        assert not inside[0, 0] and not inside[-1, -1] and inside[inside.shape[0] // 2, inside.shape[1] // 2]


def test_solid_and_replace_at_full_strength_leave_nothing_of_the_face(photo):
    out = Cover("solid", margin=0.0).apply(photo.copy(), [BOX])
    assert (out[150:380, 200:400] == 0).all()
    green = np.full((10, 10, 3), (0, 200, 0), np.uint8)
    out = Cover("replace", margin=0.0, replacement=green).apply(photo.copy(), [BOX])
    assert (out[150:380, 200:400] == (0, 200, 0)).all()


def test_stronger_blur_and_pixelate_remove_more_detail(photo):
    def detail(image):  # high-frequency energy of the face region
        face = image[150:380, 200:400].astype(np.float32).mean(axis=2)
        return float(np.abs(np.diff(face, axis=1)).mean())

    for method in ("blur", "pixelate"):
        weak = detail(Cover(method, 0.02, margin=0).apply(photo.copy(), [BOX]))
        strong = detail(Cover(method, 0.3, margin=0).apply(photo.copy(), [BOX]))
        assert strong < weak < detail(photo), method


def test_box_outside_the_image_and_bad_options():
    image = np.zeros((50, 50, 3), np.uint8)
    assert (Cover("solid").apply(image.copy(), [[100, 100, 150, 150]]) == 0).all()  # nothing to cover, no error
    with pytest.raises(ValueError, match="unknown anonymisation method"):
        Cover("swirl")
    with pytest.raises(ValueError, match="needs an image"):
        Cover("replace")
    with pytest.raises(ValueError, match="strength"):
        Cover("solid", 1.5)
    with pytest.raises(ValueError, match="strength"):
        Cover("blur", 0)
    with pytest.raises(ValueError, match="margin"):
        Cover("blur", margin=-0.1)
