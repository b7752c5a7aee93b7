"""Shared fixtures of the embedder tests: dlib chips of LFW DevTest images, cut once per session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def devtest_pairs(devtest):
    """150 LFW DevTest pairs (75 genuine, 75 impostor), about 300 images."""
    return devtest.subset(150, seed=0)


@pytest.fixture(scope="session")
def devtest_detections(devtest_pairs, pipeline):
    """(image, LFW's labelled face: the centred one) of each image of ``devtest_pairs`` where the default detector
    finds a face, as benchmarks/accuracy.py and scripts/measure_thresholds.py choose it."""
    from facelens.evaluate.protocols import centred_face

    found = {}
    for path in devtest_pairs.images():
        image = pipeline.decode(path)
        faces = pipeline.detector.detect(image)
        if faces:
            found[path] = (image, faces[centred_face([f.box for f in faces], image.shape)])
    assert len(found) > 0.95 * len(devtest_pairs.images()), "the detector should find nearly every LFW face"
    return found


@pytest.fixture(scope="session")
def devtest_chips(devtest_detections):
    """The 150×150 dlib chip of the largest face of each image of ``devtest_pairs``, by path."""
    from facelens.align import dlib_chips

    return {path: dlib_chips(image, [face.box])[0] for path, (image, face) in devtest_detections.items()}


@pytest.fixture(scope="session")
def onnx_embedder():
    from facelens.embed import get_embedder

    return get_embedder("dlib_onnx")


@pytest.fixture(scope="session")
def dlib_vectors(devtest_chips):
    """dlib's own embeddings of ``devtest_chips`` (the reference), by path."""
    import numpy as np

    from facelens.embed import get_embedder

    paths = list(devtest_chips)
    vectors = get_embedder("dlib").embed_crops([devtest_chips[p] for p in paths])
    return dict(zip(paths, np.asarray(vectors)))


@pytest.fixture(scope="session")
def onnx_vectors(devtest_chips, onnx_embedder):
    paths = list(devtest_chips)
    return dict(zip(paths, onnx_embedder.embed_crops([devtest_chips[p] for p in paths])))
