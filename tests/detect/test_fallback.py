"""Fallback chains of detectors (``hog+centerface``): the second detector answers only where the first finds nothing."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import need_data
from facelens.detect import get_detector, is_detector
from facelens.detect.fallback import FallbackDetector
from facelens.errors import ModelUnavailableError
from facelens.io.image import decode_image


def test_chain_names():
    assert is_detector("hog") and is_detector("centerface+hog") and is_detector("hog+yunet+retinaface")
    assert not is_detector("hog+hog") and not is_detector("hog+nope") and not is_detector("hog+")
    with pytest.raises(ValueError, match="chain"):
        get_detector("hog+nope")
    with pytest.raises(ValueError, match="at least two"):
        FallbackDetector([get_detector("hog")])


@pytest.fixture(scope="module")
def chain():
    try:
        return get_detector("hog+centerface")
    except ModelUnavailableError as exc:
        pytest.skip(f"centerface not available offline ({exc})")


def test_second_detector_finds_what_the_first_misses(chain):
    """Face crops that fill the frame (336×336, as the liveness checker gets them): HOG misses some; the chain
    finds a face in every one, by CenterFace exactly where HOG found none, and HOG's own faces elsewhere."""
    folder = need_data("spoof", "dtruong46me_fas_crops")
    images = [decode_image(p) for p in sorted(folder.glob("*/*.jpg"))]
    hog = chain.detectors[0]
    alone = hog.detect_many(images)
    both = chain.detect_many(images)
    missed = [i for i, faces in enumerate(alone) if not faces]
    assert missed, "HOG found a face in every crop: this test no longer tests the fallback"
    assert all(both), [i for i, faces in enumerate(both) if not faces]
    for i, (a, b) in enumerate(zip(alone, both)):
        if a:
            assert [f.detector for f in b] == ["hog"] * len(a) and all(np.array_equal(x.box, y.box) for x, y in zip(a, b))
        else:
            assert {f.detector for f in b} == {"centerface"}
    for i in missed[:3]:  # detect() agrees with detect_many()
        one = chain.detect(images[i])
        assert len(one) == len(both[i]) and np.allclose(one[0].box, both[i][0].box, atol=0.05)


def test_no_face_anywhere_is_an_empty_list(chain):
    assert chain.detect(np.full((200, 200, 3), 127, np.uint8)) == []
    assert chain.detect_many([np.zeros((64, 64, 3), np.uint8)]) == [[]]
    assert chain.detect_many([]) == []


def test_options_reach_each_member():
    """``upsample`` goes to HOG only, ``input_size`` to the onnxruntime member only; min_face_size to both."""
    try:
        chain = get_detector("centerface+hog", upsample=0, input_size=320, min_face_size=40)
    except ModelUnavailableError as exc:
        pytest.skip(f"centerface not available offline ({exc})")
    centerface, hog = chain.detectors
    assert centerface.input_size == 320 and hog.upsample == 0
    assert centerface.min_face_size == hog.min_face_size == chain.min_face_size == 40


def test_fallback_is_built_only_when_an_image_needs_it():
    """HOG's model takes a while to load: a chain whose first detector finds every face never loads it."""
    from facelens.detect import Detector

    try:
        chain = get_detector("centerface+hog")
    except ModelUnavailableError as exc:
        pytest.skip(f"centerface not available offline ({exc})")
    image = decode_image(need_data("identity", "face_recognition", "examples", "two_people.jpg"))
    assert chain.name == "centerface+hog" and len(chain.detect(image)) == 2
    assert not isinstance(chain._members[1], Detector)
    assert chain.detect(np.full((200, 200, 3), 127, np.uint8)) == []
    assert isinstance(chain._members[1], Detector) and chain.member(1).name == "hog"
