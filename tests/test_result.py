"""The one per-image result: Faces columns (indexing, masks, records), its JSON form and schema, and heads that
fail without taking the others down."""

from __future__ import annotations

import json

import numpy as np
import pytest

import facelens
from helpers import need_data
from facelens.engine import FaceAnalyzer
from facelens.result import FaceRecord, Faces, ImageRecord, ImageResult, json_schema


def _faces(n: int = 4) -> Faces:
    """Columns with distinct values per face, so every selection can be checked row by row."""
    rows = np.arange(n, dtype=np.float32)
    box = np.stack([rows * 10, rows * 10, rows * 10 + 5 + rows, rows * 10 + 5 + rows], 1)
    faces = Faces(box=box, score=rows / 10, landmarks=np.repeat(rows[:, None, None], 10, 1).reshape(n, 5, 2))
    faces.embedding = np.eye(n, 8, dtype=np.float32)
    faces.is_live = rows % 2 == 0
    faces.liveness_score = rows / n
    faces.name = np.array(["a", None, "c", None], dtype=object)[:n]
    return faces


def test_len_int_slice_mask_and_index_array():
    faces = _faces()
    assert len(faces) == 4 and len(Faces.empty()) == 0
    assert faces[1].score == pytest.approx(0.1) and faces[-1].score == pytest.approx(0.3)
    with pytest.raises(IndexError):
        faces[4]
    live = faces[faces.is_live]
    assert isinstance(live, Faces) and len(live) == 2
    assert live.score.tolist() == pytest.approx([0.0, 0.2]) and list(live.name) == ["a", "c"]
    assert np.array_equal(live.embedding, np.eye(4, 8, dtype=np.float32)[[0, 2]])
    picked = faces[[3, 0]]
    assert picked.box[0].tolist() == faces.box[3].tolist() and picked.is_live.tolist() == [False, True]
    assert faces[1:3].score.tolist() == pytest.approx([0.1, 0.2])
    assert len(faces[np.zeros(4, bool)]) == 0 and faces[np.zeros(4, bool)].embedding.shape == (0, 8)
    with pytest.raises(IndexError):
        faces[np.ones(3, bool)]
    assert faces.largest().box.tolist() == faces.box[3:4].tolist()  # the widest box, whatever the order
    assert faces.best().score.tolist() == pytest.approx([0.3])
    assert [f.index for f in faces] == [0, 1, 2, 3]
    assert list(faces.label) == ["a", "unknown", "c", "unknown"] and faces.known.tolist() == [True, False, True, False]


def test_columns_must_have_one_row_per_face():
    with pytest.raises(ValueError, match="rows"):
        Faces(box=np.zeros((2, 4)), score=np.zeros(2), landmarks=np.zeros((2, 5, 2)), embedding=np.zeros((3, 8)))


def test_records_have_only_the_keys_of_stages_that_ran():
    faces = Faces(box=[[0, 0, 10, 10]], score=[0.9], landmarks=np.zeros((1, 5, 2)))
    assert set(faces[0].to_dict()) == {"box", "score", "landmarks"}
    faces = _faces(2)
    record = faces[0].to_dict()
    assert set(record) == {"box", "score", "landmarks", "identity", "liveness"}
    assert record["identity"]["label"] == "a" and faces[1].to_dict()["identity"]["label"] == "unknown"
    assert "embedding" in faces[0].to_dict(with_embedding=True)


@pytest.fixture(scope="module")
def full_result(tmp_path_factory) -> ImageResult:
    """Every task on a real two-person photo: identity, expression, age/gender, quality, liveness."""
    from facelens.analyze.models import AGE
    from facelens.errors import ModelUnavailableError
    from facelens.models.registry import resolve

    try:
        resolve(AGE.name, download=False)
    except ModelUnavailableError as exc:
        pytest.skip(f"the age/gender model files are not here (.ci/run fetches them): {exc}")
    root = need_data("identity", "face_recognition", "examples")
    gallery = facelens.open_gallery(tmp_path_factory.mktemp("g") / "people")
    facelens.enroll(gallery, "obama", [root / "obama.jpg"])
    engine = FaceAnalyzer(tasks=("identify", "analyze", "liveness"), gallery=gallery, workers=1)
    result = engine.run_one(root / "two_people.jpg")
    gallery.close()
    return result


def test_to_dict_round_trip_and_schema(full_result):
    from pydantic import TypeAdapter

    record = full_result.to_dict(with_embedding=True)
    assert record["error"] is None and len(record["faces"]) == 2
    assert set(record["faces"][0]) >= {"box", "identity", "quality", "expression", "age", "gender", "liveness"}
    assert "obama" in [f["identity"]["name"] for f in record["faces"]]
    again = ImageResult.from_dict(json.loads(json.dumps(record)), model_id=full_result.faces.model_id)
    assert again.to_dict(with_embedding=True) == record
    assert again.faces.quality[0].score == pytest.approx(full_result.faces.quality[0].score, abs=1e-4)
    assert list(again.faces.expression_label) == list(full_result.faces.expression_label)
    # the schema is generated from the record types and accepts what to_dict emits
    TypeAdapter(ImageRecord).validate_python(record)
    schema = json_schema()
    assert schema["properties"]["faces"]["items"]["$ref"].endswith("FaceRecord")
    face_schema = json_schema(FaceRecord)
    assert {"box", "score", "landmarks"} == set(face_schema["required"])
    assert "identity" in face_schema["properties"] and "liveness" in face_schema["properties"]


def test_filter_by_any_column(full_result):
    faces = full_result.faces
    known = faces[faces.known]
    assert list(known.name) == ["obama"]
    sharp = faces[faces.quality_score > 0]
    assert len(sharp) == len(faces)
    assert len(faces[faces.age > 0]) == len(faces)


def test_heads_fail_independently(monkeypatch):
    """A head whose runtime is missing reports it per face; the other heads still answer."""
    import sys

    import facelens.analyze.expression as expression

    root = need_data("identity", "face_recognition", "examples")
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)  # LiteRT not installed (import fails)
    monkeypatch.setattr(expression, "_MODELS", {})  # no model made with it before in this process
    engine = FaceAnalyzer(tasks=("analyze",), heads=("expression", "quality"), expression_runtime="litert", workers=1)
    result = engine.run_one(root / "two_people.jpg")
    assert result.error is None and len(result.faces) == 2
    assert result.faces.expression is None
    assert result.faces.quality_score.tolist() == pytest.approx(
        [q.score for q in FaceAnalyzer(tasks=("analyze",), heads=("quality",), workers=1).run_one(
            root / "two_people.jpg").faces.quality]
    )
    for face in result.faces:
        assert "litert" in face.errors["expression"] and "quality" not in face.errors
        record = face.to_dict()
        assert "expression" not in record and "quality" in record and "expression" in record["errors"]
