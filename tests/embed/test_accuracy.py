"""Each embedder's accuracy on real LFW DevTest pairs, pinned just below what it measures, so a change that costs
accuracy (alignment, preprocessing, a profile's threshold) fails here.

The pairs are the session's fixed 150-pair subset (``devtest_pairs``, about 300 images: the full 1,000 × every
model is for ``benchmarks/accuracy.py``). Each model is judged at its own measured verification threshold
(facelens/data/<model id>.json); a pair with a face not found counts as "different". The figures printed by
``pytest -s`` are what the pins were set from, minus one pair.
"""

from __future__ import annotations

import numpy as np
import pytest

#: Pairs judged right of the 150 at the profile threshold: what each model measured on LFW's labelled (centred)
#: faces (148, 148, 149, 150, 150, 150 on 2026-12-02; one more each than with the largest face, which in
#: Tassos_Papadopoulos_0001 is another man; sface, sface_flip and dlib+sface 150 each, with centerface+hog) minus
#: one pair.
PINNED = {
    "dlib_onnx": 147,
    "dlib": 147,
    "dlib_onnx_flip": 148,
    "mobilefacenet": 149,
    "sface": 149,
    "sface_flip": 149,
    "insightface_mbf": 149,
    "dlib+mobilefacenet": 149,
    "dlib+sface": 149,
}


@pytest.fixture(scope="session")
def subset_vectors(devtest_detections, dlib_vectors, onnx_vectors):
    """Vectors by path of every embedder on the subset; each model embeds each image once per session (the
    fusion is built from its members' vectors, which tests/embed/test_fusion.py shows is what it computes)."""
    from facelens.embed import get_embedder

    paths = list(devtest_detections)
    out = {"dlib": dlib_vectors, "dlib_onnx": onnx_vectors}
    for name in ("dlib_onnx_flip", "mobilefacenet", "sface", "sface_flip", "insightface_mbf"):
        embedder = get_embedder(name)
        crops = [embedder.crops(image, [face])[0] for image, face in (devtest_detections[p] for p in paths)]
        out[name] = dict(zip(paths, embedder.embed_crops(crops)))
    fused = get_embedder("dlib+mobilefacenet")
    members = [np.stack([out[m][p] for p in paths]) for m in ("dlib_onnx_flip", "mobilefacenet")]
    out["dlib+mobilefacenet"] = dict(zip(paths, fused.combine(members)))
    fused = get_embedder("dlib+sface")
    members = [np.stack([out[m][p] for p in paths]) for m in ("dlib_onnx_flip", "sface_flip")]
    out["dlib+sface"] = dict(zip(paths, fused.combine(members)))
    return out


@pytest.mark.parametrize("name", list(PINNED))
def test_devtest_accuracy_at_the_measured_threshold(name, subset_vectors, devtest_pairs):
    from facelens.decide import verify_threshold
    from facelens.embed import get_embedder

    vectors = subset_vectors[name]
    threshold = verify_threshold(get_embedder(name).model_id)
    correct = 0
    for pair in devtest_pairs.pairs:
        va, vb = vectors.get(pair.a), vectors.get(pair.b)
        correct += int((va is not None and vb is not None and float(va @ vb) >= threshold) == pair.same)
    accuracy = correct / len(devtest_pairs.pairs)
    print(f"{name}: {accuracy:.4f} ({correct} right) on {len(devtest_pairs.pairs)} DevTest pairs at {threshold:.4f}")
    assert len(devtest_pairs.pairs) == 150 and correct >= PINNED[name], f"{correct} of 150 right"


def test_lfw_labelled_face_is_the_centred_one(lfw_dir):
    """In Tassos_Papadopoulos_0001 HOG finds two people and the larger is not him: LFW centred every image on the
    named person, so the centred face is the one to compare (benchmarks/accuracy.py and
    scripts/measure_thresholds.py pick it). The default embedder verifies that face against his other image at
    its profile threshold, and rejects the largest."""
    from facelens.decide import verify_threshold
    from facelens.detect import get_detector
    from facelens.embed import DEFAULT_EMBEDDER, get_embedder
    from facelens.evaluate.protocols import centred_face
    from facelens.io.image import decode_image

    detector, embedder = get_detector("hog"), get_embedder(DEFAULT_EMBEDDER)
    threshold = verify_threshold(embedder.model_id)
    folder = lfw_dir / "lfw_deepfunneled" / "Tassos_Papadopoulos"
    image = decode_image(folder / "Tassos_Papadopoulos_0001.jpg")
    faces = detector.detect(image)
    centred = centred_face([f.box for f in faces], image.shape)
    assert len(faces) == 2 and centred == 1, "the centred face is the smaller of the two"
    other = decode_image(folder / "Tassos_Papadopoulos_0002.jpg")
    reference = embedder.embed(other, detector.detect(other)[:1])[0]
    vectors = embedder.embed(image, faces)
    assert float(vectors[centred] @ reference) >= threshold > float(vectors[0] @ reference)


def test_centred_face_picks_the_box_nearest_the_centre():
    from facelens.evaluate.protocols import centred_face

    boxes = [(0, 0, 120, 120), (90, 90, 160, 160), (200, 200, 250, 250)]
    assert centred_face(boxes, (250, 250, 3)) == 1
    assert centred_face(boxes[:1], (250, 250)) == 0
    with pytest.raises(ValueError):
        centred_face([], (250, 250))
