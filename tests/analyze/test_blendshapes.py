"""Blendshapes on real faces (MediaPipe's models on LiteRT) and the action-unit mapping."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from helpers import need_data, need_model


@pytest.fixture(scope="session")
def smile_scores():
    """mouthSmile (left/right mean) and jawOpen per face of 20 happy, 20 neutral and 20 surprised FER2013 faces."""
    pytest.importorskip("ai_edge_litert", reason="blendshapes need the optional extra: pip install 'facelens[litert]'")
    need_model("mediapipe", "face_landmarker.task")
    from facelens.analyze.api import whole_detection
    from facelens.analyze.blendshapes import BLENDSHAPES, get_blendshape_model

    model = get_blendshape_model()
    out = {}
    for label in ("happy", "neutral", "surprise"):
        rows = []
        for path in sorted(need_data("expression", "fer2013_sample", label).glob("*.jpg"))[:20]:
            image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
            rows.append(model.scores(image, [whole_detection(image)])[0])
        out[label] = np.array(rows)
    smile = [BLENDSHAPES.index("mouthSmileLeft"), BLENDSHAPES.index("mouthSmileRight")]
    return {k: (v[:, smile].mean(1), v[:, BLENDSHAPES.index("jawOpen")], v) for k, v in out.items()}


def test_smile_higher_on_happy_than_neutral(smile_scores):
    happy, neutral = smile_scores["happy"][0], smile_scores["neutral"][0]
    print(f"\nmouthSmile happy {happy.mean():.3f} neutral {neutral.mean():.3f}")
    assert happy.mean() > 0.3 > 0.15 > neutral.mean()
    # rank test: a happy face out-smiles a neutral one in most pairs
    assert (happy[:, None] > neutral[None, :]).mean() >= 0.85


def test_jaw_opens_on_surprise(smile_scores):
    surprise, neutral = smile_scores["surprise"][1], smile_scores["neutral"][1]
    print(f"\njawOpen surprise {surprise.mean():.3f} neutral {neutral.mean():.3f}")
    assert (surprise[:, None] > neutral[None, :]).mean() >= 0.75


def test_action_units_follow_their_blendshapes(smile_scores):
    from facelens.analyze.blendshapes import ACTION_UNITS, BLENDSHAPES, action_units

    scores = smile_scores["happy"][2]
    units = action_units(scores)
    assert units.shape == (len(scores), len(ACTION_UNITS)) and (units >= 0).all() and (units <= 1).all()
    au12 = list(ACTION_UNITS).index("AU12")
    np.testing.assert_allclose(units[:, au12], smile_scores["happy"][0], atol=1e-6)
    every = {p.lstrip("-") for _, parts in ACTION_UNITS.values() for p in parts}
    assert every <= set(BLENDSHAPES)


def test_engine_fills_the_blendshapes_column(data_dir):
    pytest.importorskip("ai_edge_litert", reason="blendshapes need the optional extra: pip install 'facelens[litert]'")
    need_model("mediapipe", "face_landmarker.task")
    from facelens.engine import FaceAnalyzer
    from facelens.result import ImageResult

    image = next(iter(sorted((data_dir / "expression" / "fer2013_sample" / "happy").glob("*.jpg"))))
    engine = FaceAnalyzer(tasks=("analyze",), heads=("blendshapes",), face_crops=True, workers=1)
    result = engine.run_one(str(image)).raise_for_error()
    assert result.faces.blendshapes.shape == (1, 52)
    record = result.to_dict()["faces"][0]
    assert len(record["blendshapes"]) == 52 and record["action_units"]["AU12"] > 0.2
    again = ImageResult.from_dict(json.loads(json.dumps(result.to_dict())))
    np.testing.assert_allclose(again.faces.blendshapes, result.faces.blendshapes, atol=1e-4)
    from facelens.analyze.blendshapes import BLENDSHAPES

    smile = float(result.faces.blendshapes[0, BLENDSHAPES.index("mouthSmileLeft")])
    assert result.faces[0].blendshapes["mouthSmileLeft"] == pytest.approx(smile)


def test_missing_litert_is_a_clear_usage_error(monkeypatch, data_dir):
    from typer.testing import CliRunner

    import facelens.analyze.blendshapes as blendshapes
    from facelens.analyze.api import Analyzer
    from facelens.cli.analyze import app
    from facelens.errors import ModelUnavailableError

    monkeypatch.setattr(blendshapes, "have_litert", lambda: False)
    with pytest.raises(ModelUnavailableError, match=r"facelens\[litert\]"):
        Analyzer(heads=("blendshapes",))
    image = next(iter(sorted((data_dir / "expression" / "fer2013_sample" / "happy").glob("*.jpg"))))
    result = CliRunner().invoke(app, [str(image), "--heads", "blendshapes", "--face-crops"])
    assert result.exit_code == 2 and "ai-edge-litert" in result.output
