"""A gallery's recorded model selects its embedder in every door, so galleries enrolled with any model keep
working whatever the default embedder is; a probe of another model is refused."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import need_data, need_model

MFN = "mobilefacenet_foamliu+flip"
FUSED = "fusion(dlib_resnet_v1+flip,mobilefacenet_foamliu+flip)"


def test_model_id_selects_the_embedder_and_unknown_models_are_refused():
    from facelens.embed import DEFAULT_EMBEDDER, DEFAULT_MODEL_ID, MODELS, embedder_for_model, model_dim
    from facelens.errors import ModelMismatchError

    assert embedder_for_model("dlib_resnet_v1") == "dlib_onnx"  # dlib and dlib_onnx share it: the batched runtime
    assert embedder_for_model(MFN) == "mobilefacenet"
    assert embedder_for_model(FUSED) == "dlib+mobilefacenet"
    assert embedder_for_model("insightface_w600k_mbf_int8") == "insightface_mbf"
    assert embedder_for_model("sface_2021dec") == "sface" and embedder_for_model("sface_2021dec+flip") == "sface_flip"
    assert embedder_for_model("fusion(dlib_resnet_v1+flip,sface_2021dec+flip)") == "dlib+sface"
    assert [model_dim(m) for m in ("dlib_resnet_v1", MFN, FUSED, "insightface_w600k_mbf_int8")] == [128, 128, 256, 512]
    assert DEFAULT_MODEL_ID == MODELS[DEFAULT_EMBEDDER].model_id
    with pytest.raises(ModelMismatchError, match="arcface_r100.*known models"):
        embedder_for_model("arcface_r100")
    with pytest.raises(ModelMismatchError):  # other fusion weights are another model
        embedder_for_model("fusion(dlib_resnet_v1+flip,mobilefacenet_foamliu+flip;w=0.5,0.5)")


@pytest.mark.parametrize("name", ["dlib_onnx", "dlib", "dlib_onnx_flip", "mobilefacenet", "insightface_mbf",
                                  "dlib+mobilefacenet", "sface", "sface_flip", "dlib+sface"])
def test_the_model_table_says_what_each_embedder_makes(name):
    from facelens.embed import MODELS, get_embedder

    if name in ("mobilefacenet", "dlib+mobilefacenet"):
        need_model("mobilefacenet_foamliu")
    if name == "insightface_mbf":
        need_model("insightface_w600k_mbf_nc")
    embedder = get_embedder(name)
    assert (embedder.model_id, embedder.dim) == MODELS[name]


@pytest.mark.parametrize("model_id,dim", [(None, 128), (MFN, 128), (FUSED, 256), ("insightface_w600k_mbf_int8", 512),
                                          ("arcface_r100", 128)])
def test_new_galleries_take_the_size_of_their_model(model_id, dim, tmp_path):
    from facelens.embed import DEFAULT_MODEL_ID
    from facelens.errors import ModelMismatchError
    from facelens.gallery import open_gallery

    with open_gallery(tmp_path / "g", model_id=model_id) as gallery:
        assert (gallery.model_id, gallery.dim) == (model_id or DEFAULT_MODEL_ID, dim)
        gallery.add_embeddings(["a"], np.eye(1, dim, dtype=np.float32))
        with pytest.raises(ModelMismatchError):
            gallery.search(np.ones((1, dim + 1), np.float32))
    with open_gallery(tmp_path / "g", create=False) as again:  # reopened without a model id: its own
        assert (again.model_id, again.dim) == (model_id or DEFAULT_MODEL_ID, dim)
    with open_gallery(tmp_path / "other", model_id="arcface_r100", dim=512) as told:  # a model we do not know
        assert told.dim == 512


@pytest.fixture(scope="module")
def people():
    lfw = need_data("identity", "lfw", "lfw_deepfunneled")
    return {name: sorted(str(p) for p in (lfw / name).glob("*.jpg"))
            for name in ("Abdullah_Gul", "Adrien_Brody", "Alvaro_Uribe")}


@pytest.fixture(scope="module")
def mfn_gallery(people, tmp_path_factory):
    """A MobileFaceNet gallery (not the default model) enrolled through the library door."""
    need_model("mobilefacenet_foamliu")
    import facelens
    from facelens.gallery import open_gallery

    location = tmp_path_factory.mktemp("mfn") / "people"
    with open_gallery(location, model_id=MFN) as gallery:
        for name, images in people.items():
            assert facelens.enroll(gallery, name, images[:2]).added
    return location


def _stored_vector_matches(gallery_location, image) -> float:
    from facelens.embed import get_embedder
    from facelens.gallery import open_gallery
    from facelens.engine import models

    pipe = models()
    found = pipe.detector.detect(pipe.decode(image))
    probe = get_embedder("mobilefacenet").embed(pipe.decode(image), found[:1])[0]
    with open_gallery(gallery_location, create=False) as gallery:
        stored = next(f for f in gallery.faces(with_embeddings=True) if f.source == image).embedding
    return float(probe @ stored)


def test_every_door_uses_the_gallerys_own_embedder(mfn_gallery, people, tmp_path):
    import facelens
    from facelens.engine import FaceAnalyzer
    from facelens.gallery import open_gallery
    from facelens.io.image import decode_image
    from facelens.video.process import VideoRun

    probe = people["Abdullah_Gul"][5]
    # enrolment stored MobileFaceNet vectors (the same as embedding the image with it directly)
    assert _stored_vector_matches(mfn_gallery, people["Adrien_Brody"][0]) > 0.9999
    # library
    result = facelens.identify(probe, str(mfn_gallery))
    assert result.faces.name[0] == "Abdullah_Gul" and result.faces.model_id == MFN
    with open_gallery(mfn_gallery, create=False) as gallery:
        engine = FaceAnalyzer(tasks=("identify",), gallery=gallery, workers=1)
        assert engine.embedder == "mobilefacenet"
        assert engine.run_one(probe).faces.name[0] == "Abdullah_Gul"
        # video: frames searched with the gallery's model
        with VideoRun([decode_image(probe)] * 3, gallery, every=1) as run:
            assert run.model_id == MFN and run.engine.embedder == "mobilefacenet"
            named = {face.name for frame in run for face in frame.faces}
        assert "Abdullah_Gul" in named, named
    # CLI (the installed console script)
    exe = shutil.which("facelens") or str(Path(sys.executable).parent / "facelens")
    proc = subprocess.run([exe, "identify", "--gallery", str(mfn_gallery), "--json", probe], capture_output=True,
                          text=True, timeout=300, env=os.environ.copy())
    assert proc.returncode == 0, proc.stderr
    faces = json.loads(proc.stdout.splitlines()[0])["faces"]
    assert faces[0]["identity"]["name"] == "Abdullah_Gul", faces


def test_a_probe_of_another_model_is_refused(mfn_gallery, people):
    from facelens.engine import FaceAnalyzer
    from facelens.errors import ModelMismatchError
    from facelens.gallery import open_gallery

    with open_gallery(mfn_gallery, create=False) as gallery:
        engine = FaceAnalyzer(embedder="dlib_onnx", tasks=("identify",), gallery=gallery, workers=1)
        with pytest.raises(ModelMismatchError, match="mobilefacenet_foamliu"):
            engine.run_one(people["Abdullah_Gul"][5])  # same 128-D size, other model: refused, not searched


def test_a_dlib_gallery_keeps_working_through_the_cli_whatever_the_default(people, tmp_path):
    """``enroll --embedder`` chooses the model of a new gallery; later commands follow the gallery, and an enrolment
    with another model is refused with a usage error."""
    from facelens.gallery import open_gallery

    exe = shutil.which("facelens") or str(Path(sys.executable).parent / "facelens")

    def run(*args):
        return subprocess.run([exe, *args], capture_output=True, text=True, timeout=300, env=os.environ.copy())

    location = str(tmp_path / "dlib-people")
    for name in ("Abdullah_Gul", "Adrien_Brody"):
        proc = run("enroll", "--gallery", location, "--embedder", "dlib_onnx", "--select", "largest", name,
                   *people[name][:2])
        assert proc.returncode == 0, proc.stdout + proc.stderr
    with open_gallery(location, create=False) as gallery:
        assert gallery.model_id == "dlib_resnet_v1"
    proc = run("enroll", "--gallery", location, "--embedder", "mobilefacenet", "Alvaro_Uribe", people["Alvaro_Uribe"][0])
    assert proc.returncode == 2 and "dlib_resnet_v1" in proc.stderr and "Traceback" not in proc.stderr
    proc = run("enroll", "--gallery", location, "Alvaro_Uribe", people["Alvaro_Uribe"][0])  # no --embedder: the gallery's
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = run("identify", "--gallery", location, "--json", people["Abdullah_Gul"][5])
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[0])["faces"][0]["identity"]["name"] == "Abdullah_Gul"
    assert run("enroll", "--gallery", str(tmp_path / "x"), "--embedder", "nope", "a", people["Alvaro_Uribe"][0]).returncode == 2


def test_a_head_trained_on_embeddings_gets_the_embeddings_it_was_trained_on(mfn_gallery):
    from facelens.analyze.heads import CustomHead
    from facelens.embed import DEFAULT_EMBEDDER
    from facelens.engine import FaceAnalyzer
    from facelens.errors import ModelMismatchError
    from facelens.gallery import open_gallery

    dlib_head = CustomHead(features=("embedding",), model_ids={"embedding": "dlib_resnet_v1"})
    assert FaceAnalyzer(tasks=("analyze",), custom_head=dlib_head).embedder == "dlib_onnx"
    assert FaceAnalyzer(tasks=("analyze",), custom_head=CustomHead(features=("expression",))).embedder == DEFAULT_EMBEDDER
    assert FaceAnalyzer(tasks=("embed",), embedder="dlib_onnx_flip").embedder == "dlib_onnx_flip"  # told: as told
    with open_gallery(mfn_gallery, create=False) as gallery:  # a head and a gallery of two models: refused
        with pytest.raises(ModelMismatchError, match="custom head was trained on 'dlib_resnet_v1'"):
            FaceAnalyzer(tasks=("identify", "analyze"), gallery=gallery, custom_head=dlib_head)
