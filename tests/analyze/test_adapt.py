"""Test-time adaptation of the expression head on real CK+ faces: per-subject state, no collapse, determinism."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from facelens.analyze.adapt import ADAPT_METHODS, LinearHead, SubjectAdapter, adapt_groups
from facelens.errors import FacelensError

EXE = shutil.which("facelens") or str(Path(sys.executable).parent / "facelens")


@pytest.fixture(scope="module")
def ck_features(expression_dir):
    """Features of the default trained head for every 3rd CK+48 face, in file order (subject, sequence, frame)."""
    from facelens.analyze.expression import DEFAULT_EXPRESSION_MODEL, get_expression_model
    from facelens.analyze.expression_heads import TRAINED_HEADS, whole_crops
    from facelens.errors import ModelUnavailableError

    try:
        model = get_expression_model(DEFAULT_EXPRESSION_MODEL if DEFAULT_EXPRESSION_MODEL in TRAINED_HEADS else "ferplus_both")
        head = LinearHead.of(model)
    except ModelUnavailableError as exc:
        pytest.skip(f"no fitted expression head here: {exc}")
    files = sorted((expression_dir / "ckplus48").glob("*/*.png"), key=lambda p: p.name)[::3]
    grays = np.array([cv2.imread(str(f), cv2.IMREAD_GRAYSCALE) for f in files])
    feats = model.features(whole_crops(grays, model))
    labels = np.array([{"anger": "angry", "sadness": "sad"}.get(f.parent.name, f.parent.name) for f in files])
    subjects = np.array([f.name.split("_")[0] for f in files])
    return head, feats, labels, subjects


@pytest.mark.parametrize("method", ADAPT_METHODS)
def test_state_of_one_subject_never_reaches_another(ck_features, method):
    head, feats, _, subjects = ck_features
    a, b = [s for s in dict.fromkeys(subjects) if (subjects == s).sum() >= 3][:2]
    alone = SubjectAdapter(method, head).update(b, feats[subjects == b])
    both = SubjectAdapter(method, head)
    both.update(a, feats[subjects == a])
    assert np.array_equal(both.update(b, feats[subjects == b]), alone)


@pytest.mark.parametrize("method", ADAPT_METHODS)
def test_adaptation_is_deterministic_for_an_input_order(ck_features, method):
    head, feats, _, subjects = ck_features
    first = adapt_groups(method, head, feats, list(subjects))
    assert np.array_equal(first, adapt_groups(method, head, feats, list(subjects)))
    assert np.allclose(first.sum(1), 1, atol=1e-4)


@pytest.mark.parametrize("method", ADAPT_METHODS)
def test_a_subject_of_one_expression_does_not_collapse_the_other_classes(ck_features, method):
    """Many happy faces first, then the other expressions' faces with that state: the head's answers on them
    mostly stand (the gates keep the caches from turning everything into "happy")."""
    head, feats, labels, _ = ck_features
    happy, other = feats[labels == "happy"], feats[(labels != "happy") & (labels != "contempt")]
    base = (np.array(head.labels)[softmax_argmax(head, other)] == labels[(labels != "happy") & (labels != "contempt")])
    state = SubjectAdapter(method, head)
    state.update("one", happy)
    adapted = state.update("one", other)
    happy_index = head.labels.index("happy")
    assert (adapted.argmax(1) == happy_index).mean() <= 0.1
    right = np.array(head.labels)[adapted.argmax(1)] == labels[(labels != "happy") & (labels != "contempt")]
    assert right.mean() >= base.mean() - 0.1


def test_shot_adds_five_points_on_subjects_it_was_not_tuned_on(ck_features):
    """The issue's goal on the held-out half: shot's settings were chosen on CK+'s odd-numbered subjects, and on
    the even-numbered ones of this subset (every 3rd face, ~3 faces a subject) it measured +7.5 points and
    0.602 → 0.670 on the whole subset (benchmarks/adapt.py: +8.0 on all even subjects' faces)."""
    head, feats, labels, subjects = ck_features
    even = np.array([int(s[1:]) % 2 == 0 for s in subjects])
    base = np.array(head.labels)[softmax_argmax(head, feats)] == labels
    adapted = np.array(head.labels)[adapt_groups("shot", head, feats, list(subjects)).argmax(1)] == labels
    assert adapted[even].mean() >= base[even].mean() + 0.05
    assert adapted.mean() >= base.mean() + 0.04


@pytest.mark.parametrize("expression", ["happy", "surprise"])
def test_shot_keeps_a_subject_who_shows_one_sure_expression(ck_features, expression):
    """Diversity pushes a subject's answers apart; the faces the head is sure of are held to their answer, so a
    subject who smiles all along keeps smiling (an uncertain one-expression subject does lose: see the docs)."""
    head, feats, labels, _ = ck_features
    one = labels == expression
    base = (np.array(head.labels)[softmax_argmax(head, feats[one])] == expression).mean()
    adapted = SubjectAdapter("shot", head).update("one", feats[one])
    assert (np.array(head.labels)[adapted.argmax(1)] == expression).mean() >= base - 0.05


def test_shot_keeps_the_head_s_answer_on_a_subject_s_first_face(ck_features):
    """One face is no evidence about a person: on each subject's first face the diversity weight is below the
    entropy term's, so the offset only sharpens the head's own answer."""
    head, feats, _, subjects = ck_features
    first = [int(np.flatnonzero(subjects == s)[0]) for s in dict.fromkeys(subjects)]
    adapted = adapt_groups("shot", head, feats, list(subjects))
    assert np.array_equal(adapted[first].argmax(1), softmax_argmax(head, feats[first]))


def test_balanced_prior_gains_more_than_any_subject_method_and_ignores_the_subject(ck_features):
    """The head without FER+'s class prior: on this subset's even subjects 0.609 → 0.828 (shot: 0.684), and the
    same answer for a face whatever group it is in (nothing per subject)."""
    head, feats, labels, subjects = ck_features
    even = np.array([int(s[1:]) % 2 == 0 for s in subjects])
    base = np.array(head.labels)[softmax_argmax(head, feats)] == labels
    by_subject = adapt_groups("balanced", head, feats, list(subjects))
    right = np.array(head.labels)[by_subject.argmax(1)] == labels
    assert right[even].mean() >= base[even].mean() + 0.15
    shot = np.array(head.labels)[adapt_groups("shot", head, feats, list(subjects)).argmax(1)] == labels
    assert right[even].mean() > shot[even].mean()
    assert np.allclose(by_subject, adapt_groups("balanced", head, feats, ["one"] * len(feats)), atol=1e-6)


def softmax_argmax(head: LinearHead, feats: np.ndarray) -> np.ndarray:
    return head.logits(head.standardise(feats)).argmax(1)


def test_a_model_without_a_linear_head_is_refused_clearly():
    class Cnn:
        name = "opencv_fer"

    with pytest.raises(FacelensError, match="no linear head"):
        LinearHead.of(Cnn())


def test_unknown_method_and_wrong_feature_size_are_refused(ck_features):
    head, feats, _, _ = ck_features
    with pytest.raises(ValueError, match="unknown adaptation method"):
        SubjectAdapter("magic", head)
    with pytest.raises(FacelensError, match="do not fit"):
        SubjectAdapter("cache", head).update("x", feats[:2, :10])


# -- the doors: engine, CLI, video ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_subjects(expression_dir, tmp_path_factory):
    """Folders of two CK+ subjects' face crops (one person per folder, as `--group-by folder` expects)."""
    import shutil

    root = tmp_path_factory.mktemp("subjects")
    for subject in ("S010", "S011"):
        (root / subject).mkdir()
        for path in sorted((expression_dir / "ckplus48").glob(f"*/{subject}_*.png")):
            shutil.copy(path, root / subject / path.name)
    return root


def _adapted(records: list[dict]) -> dict[str, dict]:
    return {Path(r["path"]).name: r["faces"][0]["expression"] for r in records}


@pytest.mark.parametrize("method", ["cache", "shot"])
def test_cli_adapts_per_folder_and_keeps_the_unadapted_answer(two_subjects, method):
    import json
    import subprocess

    def run(*inputs: Path) -> dict[str, dict]:
        out = subprocess.run([EXE, "analyze", *map(str, inputs), "--face-crops",
                              "--heads", "expression", "--adapt", method, "--json"],
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
        return _adapted([json.loads(line) for line in out.splitlines()])

    both = run(two_subjects)
    assert both and all(e["adapted"]["method"] == method and set(e["adapted"]["probabilities"]) ==
                        set(e["probabilities"]) for e in both.values())  # fmt: skip
    alone = run(two_subjects / "S011")  # the other subject's faces first change nothing for this one
    assert {k: v["adapted"] for k, v in both.items() if k.startswith("S011")} == {k: v["adapted"] for k, v in alone.items()}
    assert run(two_subjects / "S011") == alone  # deterministic


def test_cli_refuses_adaptation_of_a_model_without_a_linear_head(two_subjects):
    import subprocess

    done = subprocess.run([EXE, "analyze", str(two_subjects), "--face-crops",
                           "--adapt", "cache", "--expression-model", "mini_xception"], capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 2 and "linear head" in done.stderr
    bad = subprocess.run([EXE, "analyze", str(two_subjects), "--face-crops",
                          "--adapt", "magic"], capture_output=True, text=True)  # fmt: skip
    assert bad.returncode == 2 and "unknown adaptation method" in bad.stderr


def test_video_adapts_each_track(two_subjects):
    """A clip of one subject's faces: each frame's face carries the adapted answer beside the unadapted one."""
    from facelens.video import process_video

    frames = []
    for path in sorted((two_subjects / "S011").glob("*.png")):
        face = cv2.resize(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE), (160, 160), interpolation=cv2.INTER_CUBIC)
        canvas = np.full((240, 320), 128, np.uint8)
        canvas[40:200, 80:240] = face
        frames += [cv2.cvtColor(canvas, cv2.COLOR_GRAY2RGB)] * 2
    run = process_video(iter(frames), None, fps=25.0, analyze=True, adapt="t3a")
    adapted = [f["expression"]["adapted"] for r in run for f in r.to_dict()["faces"] if "expression" in f]
    assert len(adapted) >= len(frames) // 2 and all(a["method"] == "t3a" for a in adapted)
    with pytest.raises(ValueError, match="analyze"):
        process_video(iter(frames), None, fps=25.0, adapt="cache")


def test_video_takes_the_expression_model_like_the_other_doors(two_subjects):
    from facelens.video import process_video

    path = sorted((two_subjects / "S011").glob("*.png"))[0]
    face = cv2.resize(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE), (160, 160), interpolation=cv2.INTER_CUBIC)
    canvas = np.full((240, 320), 128, np.uint8)
    canvas[40:200, 80:240] = face
    frames = [cv2.cvtColor(canvas, cv2.COLOR_GRAY2RGB)] * 4
    run = process_video(iter(frames), None, fps=25.0, analyze=True, expression_model="mini_xception")
    probs = [f["expression"]["probabilities"] for r in run for f in r.to_dict()["faces"] if "expression" in f]
    assert probs and all(len(p) == 7 for p in probs)
    with pytest.raises(ValueError, match="unknown expression model"):
        process_video(iter(frames), None, fps=25.0, analyze=True, expression_model="magic")
