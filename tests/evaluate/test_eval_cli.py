"""Every ``facelens eval`` command run for real through Typer's CliRunner (embeddings reused via --cache)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import pytest
from typer.testing import CliRunner

from facelens.cli.evaluate import app
from facelens.embed import DEFAULT_MODEL_ID

runner = CliRunner()


def run(*args: str):
    result = runner.invoke(app, [str(a) for a in args])
    return result


def test_verify_json_and_report(lfw_dir, embedding_cache, devtest_scored, tmp_path):
    from sklearn.metrics import roc_auc_score

    out = tmp_path / "verify"
    r = run("verify", "--pairs", lfw_dir / "pairsDevTest.txt", "--root", lfw_dir, "--cache", embedding_cache,
            "--json", "--out", out, "--target-fmr", "0.01")
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["auc"] == pytest.approx(roc_auc_score(devtest_scored.labels, devtest_scored.scores))
    assert data["n_pairs"] == 1000 and data["n_fte_pairs"] == int(devtest_scored.fte.sum())
    assert len(data["failures_to_enrol"]) == len(devtest_scored.failures)
    assert (devtest_scored.scores[~devtest_scored.labels] >= data["threshold_for_fmr"]["0.01"]).mean() <= 0.01
    assert (out / "report.html").is_file() and (out / "roc.png").is_file() and (out / "det.png").is_file()
    # human-readable table, excluded FTE pairs
    r = run("verify", "--pairs", lfw_dir / "pairsDevTest.txt", "--cache", embedding_cache, "--fte", "exclude")
    assert r.exit_code == 0 and "Verification" in r.output and "left out" in r.output


def test_calibrate_then_verify_reports_it(lfw_dir, embedding_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("FACELENS_CALIBRATION_DIR", str(tmp_path / "cal"))
    r = run("calibrate", "--pairs", lfw_dir / "pairsDevTest.txt", "--cache", embedding_cache, "--method", "isotonic",
            "--json", "--out", tmp_path / "calrep")
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["holdout"]["cllr"] < 0.5 and data["cllr_min"] <= data["cllr"] + 1e-12
    assert Path(data["saved_to"]) == tmp_path / "cal" / f"{DEFAULT_MODEL_ID}.json"
    assert (tmp_path / "calrep" / "tippett.png").is_file()
    r = run("verify", "--pairs", lfw_dir / "pairsDevTest.txt", "--cache", embedding_cache, "--json")
    assert json.loads(r.output)["calibration"]["cllr_on_these_pairs"] < 0.5


def test_identify_on_folder_of_people(data_dir, tmp_path):
    johns = data_dir / "identity" / "dlib" / "examples" / "johns"
    if not johns.is_dir():
        pytest.skip(f"{johns} not found")
    r = run("identify", "--root", johns, "--json", "--seed", "1", "--out", tmp_path / "id",
            "--cache", tmp_path / "johns.npz")
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["n_gallery_people"] == 4 and data["n_non_mated"] == 11  # 5 people: 1 left out as impostor
    assert data["cmc"]["rank1"] > 0.8 and (tmp_path / "id" / "cmc.png").is_file()
    assert set(data["fpir_thresholds"]) == {"0.1", "0.01"} and data["fpir_resolvable"]["0.1"] is True
    r = run("identify", "--root", johns, "--cache", tmp_path / "johns.npz", "--fpir", "0.2")  # table; cache reused
    assert r.exit_code == 0 and "rank1" in r.output and "fnir_at_fpir.0.2" in r.output


def test_fairness_command(lfw_dir, embedding_cache, tmp_path):
    # attribute per person: initial A–L vs M–Z (a real split of these people, not a demographic one)
    people = sorted({p.name for p in (lfw_dir / "lfw_deepfunneled").iterdir() if p.is_dir()})
    rows = ["person,initials"] + [f"{p},{'A-L' if p[0].upper() <= 'L' else 'M-Z'}" for p in people]
    (tmp_path / "attrs.csv").write_text("\n".join(rows) + "\n")
    r = run("fairness", "--attributes", tmp_path / "attrs.csv", "--pairs", lfw_dir / "pairsDevTest.txt",
            "--cache", embedding_cache, "--target-fmr", "0.01", "--json", "--out", tmp_path / "fair")
    assert r.exit_code == 0, r.output
    v = json.loads(r.output)["verification"]["initials"]
    groups = {g["group"]: g for g in v["groups"]}
    assert set(groups) >= {"A-L", "M-Z"}
    assert sum(g["n_genuine"] for g in groups.values()) == 500
    assert sum(g["n_impostor"] for g in groups.values()) == 500
    assert (tmp_path / "fair" / "report.html").is_file()
    # classifier audit from a predictions table
    (tmp_path / "pred.csv").write_text("person,true,predicted\nA_x,happy,happy\nN_y,sad,happy\n")
    (tmp_path / "a2.csv").write_text("person,band\nA_x,young\nN_y,old\n")
    r = run("fairness", "--attributes", tmp_path / "a2.csv", "--predictions", tmp_path / "pred.csv", "--min-count", "1")
    assert r.exit_code == 0, r.output
    assert "Classifier by band" in r.output and "Dataset bias" in r.output


def test_robustness_command(lfw_dir, embedding_cache, tmp_path):
    r = run("robustness", "--pairs", lfw_dir / "pairsDevTest.txt", "--cache", embedding_cache, "--subset", "20",
            "--kind", "jpeg", "--keep-box", "--json", "--out", tmp_path / "rob")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)["rows"]
    assert [row["perturbation"] for row in rows] == ["none", "jpeg=50", "jpeg=20", "jpeg=5"]
    assert all(row["n_pairs"] == 20 for row in rows)
    assert (tmp_path / "rob" / "robustness_eer.png").is_file()


def test_identity_preservation(lfw_dir, tmp_path):
    people = ["Abdullah_Gul", "AJ_Lamas", "Aaron_Guiel", "Reese_Witherspoon"]
    src = [next((lfw_dir / "lfw_deepfunneled" / p).glob("*.jpg")) for p in people]
    orig, jpeg, swapped = (tmp_path / d for d in ("orig", "jpeg", "swapped"))
    for d in (orig, jpeg, swapped):
        d.mkdir()
    for i, path in enumerate(src):
        shutil.copy(path, orig / f"{i}.jpg")
        img = cv2.imread(str(path))
        cv2.imwrite(str(jpeg / f"{i}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 40])
        shutil.copy(src[(i + 1) % len(src)], swapped / f"{i}.jpg")  # someone else: identity not preserved
    r = run("identity", "--originals", orig, "--processed", jpeg, "--json")
    assert r.exit_code == 0, r.output
    same = json.loads(r.output)
    r = run("identity", "--originals", orig, "--processed", swapped, "--json")
    other = json.loads(r.output)
    assert same["n_pairs"] == 4 and same["share_matching"] == 1.0 and same["mean_similarity"] > 0.97
    assert other["share_matching"] == 0.0 and other["mean_similarity"] < same["mean_similarity"] - 0.05
    assert run("identity", "--originals", orig, "--processed", jpeg).exit_code == 0


def test_errors_are_one_line_and_nonzero(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("x,y\n1,2\n")
    r = run("verify", "--pairs", bad)
    assert r.exit_code == 2 and r.output.strip().startswith("error:") and len(r.output.strip().splitlines()) == 1
    r = run("fairness", "--attributes", bad)
    assert r.exit_code == 2 and "--pairs" in r.output


def test_select_centre_scores_lfws_labelled_face(lfw_dir, tmp_path):
    """Tassos_Papadopoulos_0001 shows two men and the larger is not him; LFW centred every image on the named person.
    ``--select centre`` compares the centred face: the genuine pair is then a match at the model's threshold,
    while the largest face is not. A cache keeps its selection: reusing it with another one is refused."""
    folder = lfw_dir / "lfw_deepfunneled" / "Tassos_Papadopoulos"
    others = sorted(p.parent for p in (lfw_dir / "lfw_deepfunneled").glob("A*/*_0002.jpg"))[:5]
    rows = [(folder / "Tassos_Papadopoulos_0001.jpg", folder / "Tassos_Papadopoulos_0002.jpg", 1)]
    rows += [(o / f"{o.name}_0001.jpg", o / f"{o.name}_0002.jpg", 1) for o in others]
    rows += [(a / f"{a.name}_0001.jpg", b / f"{b.name}_0002.jpg", 0) for a, b in zip(others, others[1:] + [folder])]
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("a,b,same\n" + "".join(f"{a},{b},{same}\n" for a, b, same in rows))
    from facelens.decide import verify_threshold
    from facelens.engine import models
    from facelens.evaluate.embeddings import embed_images
    from facelens.evaluate.protocols import read_pairs

    pipe = models(detector="hog")
    paths = read_pairs(pairs).images()
    genuine = {}
    for select in ("largest", "centre"):
        emb = embed_images(paths, pipeline=pipe, select=select, workers=1)
        assert emb.select == select
        genuine[select] = float(emb.pair_scores([paths[:2]])[0][0])
    threshold = verify_threshold(pipe.model_id)
    assert genuine["centre"] >= threshold > genuine["largest"]

    cache = tmp_path / "emb.npz"
    r = run("verify", "--pairs", pairs, "--detector", "hog", "--select", "centre", "--cache", cache, "--json")
    assert r.exit_code == 0, r.output
    r = run("verify", "--pairs", pairs, "--detector", "hog", "--cache", cache, "--json")
    assert r.exit_code == 2 and "centre face" in r.output
    r = run("verify", "--pairs", pairs, "--select", "middle")
    assert r.exit_code == 2 and "unknown face selection" in r.output


def test_eval_embedder_is_the_model_evaluated(lfw_dir, embedding_cache, tmp_path):
    """`--embedder` evaluates another model (its embeddings cached under its own model id); a cache of the default
    model is refused for it, and an unknown name is a usage error."""
    from facelens.evaluate.embeddings import EmbeddingSet
    from facelens.evaluate.protocols import read_pairs

    pairs = read_pairs(lfw_dir / "pairsDevTest.txt", lfw_dir).pairs
    chosen = [p for p in pairs if p.same][:4] + [p for p in pairs if not p.same][:4]
    csv = tmp_path / "pairs.csv"
    csv.write_text("a,b,same\n" + "".join(f"{p.a},{p.b},{int(p.same)}\n" for p in chosen))
    cache = tmp_path / "dlib.npz"
    r = run("verify", "--pairs", csv, "--embedder", "dlib_onnx", "--cache", cache, "--json")
    assert r.exit_code == 0, r.output
    assert EmbeddingSet.load(cache).model_id == "dlib_resnet_v1" != DEFAULT_MODEL_ID
    assert json.loads(r.output)["n_pairs"] == 8
    refused = run("verify", "--pairs", csv, "--embedder", "dlib_onnx", "--cache", embedding_cache)
    assert refused.exit_code != 0 and "dlib_resnet_v1" in refused.output
    assert run("verify", "--pairs", csv, "--embedder", "nope").exit_code == 2
