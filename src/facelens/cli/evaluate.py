"""``facelens eval ...``: measure accuracy, calibration, fairness, robustness and identity preservation on the
user's own data. Rich tables for people, ``--json`` for machines (the report as one JSON line); ``--out DIR``
writes JSON, PNGs and an HTML report. Any error (a bad pairs file, a folder without people) exits 2."""

from __future__ import annotations

import math
from pathlib import Path
from typing import NoReturn

import typer

from facelens.cli.options import DEFAULT_DETECTOR, DETECTOR_HELP, JSON_HELP, known_detector, known_embedder
from facelens.cli.output import USAGE, emit
from facelens.cli.output import fail as _fail
from facelens.cli.output import out as stdout
from facelens.errors import FacelensError

app = typer.Typer(help="Evaluate on your own data: accuracy, calibration, fairness, robustness, anonymisation.",
                  no_args_is_help=True)


def fail(exc: Exception) -> NoReturn:
    _fail(exc, USAGE)


def _table(title: str, rows: dict | list[dict]) -> None:
    from rich.table import Table

    table = Table(title=title)
    if isinstance(rows, dict):
        table.add_column("measure", no_wrap=True)
        table.add_column("value", justify="right")
        for k, v in rows.items():
            table.add_row(str(k), f"{v:.4g}" if isinstance(v, float) else str(v))
    elif rows:
        for i, col in enumerate(rows[0]):
            table.add_column(str(col), no_wrap=i == 0)
        for r in rows:
            table.add_row(*(f"{v:.4g}" if isinstance(v, float) else str(v) for v in r.values()))
    stdout.print(table)


def _emit(data: dict, as_json: bool) -> None:
    if as_json:
        emit(data)


def _pipeline(detector: str, embedder: str | None = None):
    from facelens.embed import DEFAULT_EMBEDDER
    from facelens.engine import models

    return models(detector=detector, embedder=embedder or DEFAULT_EMBEDDER)


def _embeddings(cache: Path | None, pipe, select: str = "largest"):
    from facelens.evaluate.embeddings import EmbeddingSet

    if cache and cache.is_file():
        emb = EmbeddingSet.load(cache)
        if emb.model_id != pipe.model_id:
            raise FacelensError(f"{cache} holds {emb.model_id!r} embeddings, the pipeline uses {pipe.model_id!r}")
        if emb.select != select:
            raise FacelensError(f"{cache} holds embeddings of the {emb.select} face of each image, not the {select} "
                                "one: use another --cache")
        return emb
    return EmbeddingSet(pipe.model_id, select=select)


def _scored(pairs_file: Path, root: Path | None, detector: str, cache: Path | None, select: str = "largest",
            embedder: str | None = None):
    from facelens.evaluate.protocols import read_pairs
    from facelens.evaluate.verification import score_pairs

    pairs = read_pairs(pairs_file, root)
    pipe = _pipeline(detector, embedder)
    emb = _embeddings(cache, pipe, select)
    scored = score_pairs(pairs, emb, pipe)
    if cache:
        emb.save(cache)
    return pairs, pipe, scored


PairsOpt = typer.Option(..., "--pairs", help="LFW pairs.txt / pairsDevTest.txt, or CSV a,b,same", exists=True, dir_okay=False)
RootOpt = typer.Option(None, "--root", help="folder the image paths are relative to (default: the pairs file's folder)")
JsonOpt = typer.Option(False, "--json", help=JSON_HELP)
OutOpt = typer.Option(None, "--out", help="write results.json, PNG plots and report.html here")
DetOpt = typer.Option(DEFAULT_DETECTOR, "--detector", help=DETECTOR_HELP, callback=known_detector)
CacheOpt = typer.Option(None, "--cache", help=".npz file to reuse embeddings between runs")
EmbedOpt = typer.Option(None, "--embedder", callback=known_embedder,
                        help="Embedding model evaluated (default: the default embedder, sface).")
def _known_select(value: str) -> str:
    from facelens.engine import SELECTIONS

    if value not in SELECTIONS:
        raise typer.BadParameter(f"unknown face selection {value!r}: use {', '.join(SELECTIONS)}")
    return value


SelectOpt = typer.Option("largest", "--select", help="which face of an image with several: largest, best, only or "
                         "centre (LFW: the labelled face is the centred one)", callback=_known_select)



@app.command()
def verify(
    pairs: Path = PairsOpt, root: Path | None = RootOpt, json_out: bool = JsonOpt, out: Path | None = OutOpt,
    target_fmr: list[float] = typer.Option([1e-2, 1e-3], "--target-fmr", help="report the threshold for this FMR"),
    fte: str = typer.Option("reject", "--fte", help="pairs with an image without a face: reject (count as "
                            "non-match) or exclude"),
    detector: str = DetOpt, embedder: str | None = EmbedOpt, cache: Path | None = CacheOpt, select: str = SelectOpt,
) -> None:
    """Verification accuracy on labelled pairs: ROC/DET, AUC, EER, TAR@FAR, accuracy, threshold per target FMR."""
    try:
        from facelens.evaluate.calibration import load_calibration
        from facelens.evaluate.metrics import cllr, far_key
        from facelens.evaluate.verification import evaluate_scored, fmr_threshold, verification_report

        _, pipe, scored = _scored(pairs, root, detector, cache, select, embedder)
        metrics = evaluate_scored(scored, fte)
        result = {"model_id": pipe.model_id, **metrics.to_dict(), "failures_to_enrol": scored.failures,
                  "threshold_for_fmr": {far_key(t): fmr_threshold(scored.kept(fte), t) for t in target_fmr}}
        cal = load_calibration(pipe.model_id)
        if cal is not None:
            s = scored.kept("exclude")
            result["calibration"] = {"method": cal.method, "cllr_on_these_pairs": cllr(cal.log_lr(s.scores), s.labels)}
        if out:
            result["report"] = str(verification_report(scored, metrics, out, f"Verification: {pairs.name}",
                                                       pipe.model_id, cal, {"threshold_for_fmr": result["threshold_for_fmr"]}))
    except (FacelensError, ValueError) as exc:
        fail(exc)
    if json_out:
        return _emit(result, True)
    from facelens.evaluate.report import flatten

    _table(f"Verification ({pipe.model_id}, {metrics.n_pairs} pairs)", {
        k: v for k, v in flatten(result).items() if k not in ("fte_policy",) and not k.startswith("failures")})
    stdout.print(f"{len(scored.failures)} image(s) without a usable face; {metrics.n_fte_pairs} pair(s) scored as: {metrics.fte_policy}")


@app.command()
def identify(
    root: Path = typer.Option(..., "--root", help="one folder per person, or a CSV person,image", exists=True),
    seed: int = typer.Option(0, "--seed"),
    gallery_per_person: int = typer.Option(1, "--gallery-per-person", min=1),
    impostor_share: float = typer.Option(0.2, "--impostor-share", help="share of people left out as impostors"),
    fpir: list[float] = typer.Option([0.1, 0.01], "--fpir", help="report FNIR and the threshold at this FPIR"),
    json_out: bool = JsonOpt, out: Path | None = OutOpt, detector: str = DetOpt,
    embedder: str | None = EmbedOpt, cache: Path | None = CacheOpt,
    select: str = SelectOpt,
) -> None:
    """Closed- and open-set identification: CMC rank-1/5/10, FNIR at FPIR, threshold per target FPIR."""
    try:
        from facelens.evaluate import report
        from facelens.evaluate.identification import evaluate_identification
        from facelens.evaluate.protocols import read_identities, split_identification

        split = split_identification(read_identities(root), seed, gallery_per_person, impostor_share)
        if not split.mated:
            raise FacelensError(f"{root}: no person has more than {gallery_per_person} image(s); nothing to probe")
        pipe = _pipeline(detector, embedder)
        emb = _embeddings(cache, pipe, select)
        run = evaluate_identification(split, pipe, emb, fpirs=tuple(fpir))
        if cache:
            emb.save(cache)
        m = run.metrics
        result = {"model_id": pipe.model_id, "seed": seed, **m.to_dict(), "failures_to_enrol": run.failures}
        if out:
            result["report"] = str(report.write_report(
                out, f"Identification: {root.name}", result, {"cmc": report.plot_cmc(m.cmc_curve)},
                {"Summary": report.flatten({k: v for k, v in result.items() if k != "failures_to_enrol"})}))
    except (FacelensError, ValueError) as exc:
        fail(exc)
    if json_out:
        return _emit(result, True)
    from facelens.evaluate.report import flatten

    _table(f"Identification ({pipe.model_id}, seed {seed})",
           {k: v for k, v in flatten(result).items() if not k.startswith("failures")})


@app.command()
def calibrate(
    pairs: Path = PairsOpt, root: Path | None = RootOpt,
    method: str = typer.Option("logistic", "--method", help="logistic or isotonic"),
    holdout: float = typer.Option(0.5, "--holdout", help="share of pairs held out to check the fit (0 = none)"),
    seed: int = typer.Option(0, "--seed"),
    save: bool = typer.Option(True, "--save/--no-save", help="store the calibration (fitted on all pairs) for this model"),
    directory: Path | None = typer.Option(None, "--dir", help="calibration folder (default $FACELENS_CALIBRATION_DIR "
                                             "or ~/.config/facelens/calibration)"),
    json_out: bool = JsonOpt, out: Path | None = OutOpt, detector: str = DetOpt,
    embedder: str | None = EmbedOpt, cache: Path | None = CacheOpt,
    select: str = SelectOpt,
) -> None:
    """Fit similarity → P(same person) and likelihood ratio; report Cllr, Cllr_min, held-out reliability."""
    try:
        from facelens.evaluate import report
        from facelens.evaluate.calibration import fit_calibration, reliability
        from facelens.evaluate.metrics import cllr

        _, pipe, scored = _scored(pairs, root, detector, cache, select, embedder)
        s = scored.kept("exclude")  # a pair without a face has no similarity to calibrate
        result: dict = {"model_id": pipe.model_id, "method": method, "n_pairs": int(s.scores.size),
                        "n_fte_pairs_left_out": int(scored.fte.sum())}
        figures = {}
        if holdout > 0:
            import numpy as np

            rng = np.random.default_rng(seed)
            idx = rng.permutation(s.scores.size)
            n_test = int(round(holdout * idx.size))
            test, train = idx[:n_test], idx[n_test:]
            part = fit_calibration(s.scores[train], s.labels[train], pipe.model_id, method)
            prior = float(s.labels[test].mean())
            prob, _ = part.apply(s.scores[test], prior=prior)
            rel = reliability(prob, s.labels[test])
            result["holdout"] = {"n_train": int(train.size), "n_test": int(test.size),
                                 "cllr": cllr(part.log_lr(s.scores[test]), s.labels[test]),
                                 "ece": rel["ece"], "prior": prior, "reliability": rel["bins"]}
            figures["reliability_holdout"] = report.plot_reliability(rel)
        cal = fit_calibration(s.scores, s.labels, pipe.model_id, method)
        result.update({"cllr": cal.cllr, "cllr_min": cal.cllr_min, "calibration": cal.to_dict()})
        if save:
            result["saved_to"] = str(cal.save(directory))
        if out:
            figures["tippett"] = report.plot_tippett(cal.log_lr(s.scores), s.labels)
            summary = {"model": pipe.model_id, "method": method, "Cllr": cal.cllr, "Cllr_min": cal.cllr_min,
                       **{f"holdout {k}": v for k, v in result.get("holdout", {}).items() if not isinstance(v, list)}}
            result["report"] = str(report.write_report(out, f"Calibration: {pairs.name}", result, figures,
                                                       {"Summary": summary}))
    except (FacelensError, ValueError) as exc:
        fail(exc)
    if json_out:
        return _emit(result, True)
    rows = {"pairs": result["n_pairs"], "Cllr": cal.cllr, "Cllr_min": cal.cllr_min}
    rows.update({f"held-out {k}": v for k, v in result.get("holdout", {}).items() if k in ("cllr", "ece", "n_test")})
    if "saved_to" in result:
        rows["saved to"] = result["saved_to"]
    _table(f"Calibration ({method}, {pipe.model_id})", rows)


def _lookup(attrs: dict[str, dict[str, str]], image: str, root: Path) -> dict[str, str] | None:
    """Attributes of an image, keyed by its path relative to root, its file name or its person (parent folder)."""
    p = Path(image)
    for key in (str(p.relative_to(root)) if p.is_relative_to(root) else None, p.name, p.stem, p.parent.name):
        if key and key in attrs:
            return attrs[key]
    return None


@app.command()
def fairness(
    attributes: Path = typer.Option(..., "--attributes", exists=True, dir_okay=False,
                                    help="CSV: first column an image path, file name or person; other columns attributes"),
    pairs: Path | None = typer.Option(None, "--pairs", exists=True, dir_okay=False, help="verification pairs to audit"),
    root: Path | None = RootOpt,
    predictions: Path | None = typer.Option(None, "--predictions", exists=True, dir_okay=False,
                                               help="classifier CSV: key,true,predicted (key as in --attributes)"),
    threshold: float | None = typer.Option(None, "--threshold", help="operating similarity threshold"),
    target_fmr: float | None = typer.Option(None, "--target-fmr", help="or: the threshold giving this FMR overall"),
    min_count: int = typer.Option(30, "--min-count", help="smaller groups are flagged as too small to judge"),
    json_out: bool = JsonOpt, out: Path | None = OutOpt, detector: str = DetOpt,
    embedder: str | None = EmbedOpt, cache: Path | None = CacheOpt,
    select: str = SelectOpt,
) -> None:
    """Per-group error rates and their max/min ratios (verification and/or classifier), plus dataset bias."""
    try:
        import csv as _csv

        from facelens.evaluate import fairness as fair
        from facelens.evaluate import report
        from facelens.evaluate.verification import fmr_threshold

        if pairs is None and predictions is None:
            raise FacelensError("give --pairs (verification audit) and/or --predictions (classifier audit)")
        _, attrs = fair.read_attributes(attributes)
        columns = sorted({c for a in attrs.values() for c in a})
        result: dict = {"attributes": columns, "verification": {}, "classifier": {}, "dataset": {}}
        if pairs is not None:
            pair_set, pipe, scored = _scored(pairs, root, detector, cache, select, embedder)
            base = Path(root or pairs.parent)
            if threshold is None:
                if target_fmr is not None:
                    threshold = fmr_threshold(scored, target_fmr)
                else:
                    from facelens.decide import verify_threshold

                    threshold = verify_threshold(pipe.model_id)
            result["model_id"] = pipe.model_id
            for col in columns:
                ga = [(_lookup(attrs, p.a, base) or {}).get(col) for p in pair_set.pairs]
                gb = [(_lookup(attrs, p.b, base) or {}).get(col) for p in pair_set.pairs]
                result["verification"][col] = fair.verification_by_group(scored.scores, scored.labels, ga, gb,
                                                                         threshold, min_count)
        if predictions is not None:
            with predictions.open(newline="") as fh:
                rows = list(_csv.reader(fh))[1:]
            keys = [r[0] for r in rows]
            y_true, y_pred = [r[1] for r in rows], [r[2] for r in rows]
            for col in columns:
                groups = [attrs.get(k, {}).get(col) or "(unknown)" for k in keys]
                result["classifier"][col] = fair.classifier_by_group(y_true, y_pred, groups, min_count)
                result["dataset"][col] = fair.dataset_bias(y_true, groups, min_count)
        if out:
            tables = {}
            for col, v in result["verification"].items():
                tables[f"Verification by {col} (threshold {v['threshold']:.4f}; FMR ratio {v['fmr_ratio']}, "
                       f"FNMR ratio {v['fnmr_ratio']})"] = [
                    {k: x for k, x in g.items() if not k.endswith("ci95")} for g in v["groups"]]
            for col, v in result["classifier"].items():
                tables[f"Classifier by {col}"] = [{"group": g["group"], "n": g["n"], "accuracy": g["accuracy"],
                                                   "too_small": g["too_small"]} for g in v["groups"]]
            for col, v in result["dataset"].items():
                tables[f"Dataset bias by {col} (Cramér's V {v['cramers_v']:.3f})"] = v["group_shares"]
            result["report"] = str(report.write_report(out, "Fairness audit", result, {}, tables))
    except (FacelensError, ValueError) as exc:
        fail(exc)
    if json_out:
        return _emit(result, True)
    for col, v in result["verification"].items():
        _table(f"Verification by {col}: threshold {v['threshold']:.4f}, FMR max/min {v['fmr_ratio']}, "
               f"FNMR max/min {v['fnmr_ratio']}",
               [{"group": g["group"], "genuine": g["n_genuine"], "FNMR": g["fnmr"], "impostor": g["n_impostor"],
                 "FMR": g["fmr"], "too small": g["too_small"]} for g in v["groups"]])
    for col, v in result["classifier"].items():
        _table(f"Classifier by {col}: accuracy gap {v['accuracy_gap']}",
               [{"group": g["group"], "n": g["n"], "accuracy": g["accuracy"], "too small": g["too_small"]}
                for g in v["groups"]])
    for col, v in result["dataset"].items():
        _table(f"Dataset bias by {col}: Cramér's V {v['cramers_v']:.3f}", v["group_shares"])


@app.command()
def robustness(
    pairs: Path = PairsOpt, root: Path | None = RootOpt,
    subset: int = typer.Option(200, "--subset", help="evaluate this many pairs (half genuine), 0 = all"),
    kinds: list[str] = typer.Option(["occlude_eyes", "occlude_forehead", "blur", "noise", "jpeg", "downscale", "rotate"],
                                    "--kind", help="perturbation kinds (repeat the option)"),
    redetect: bool = typer.Option(True, "--redetect/--keep-box", help="re-run detection on the perturbed image"),
    seed: int = typer.Option(0, "--seed"),
    json_out: bool = JsonOpt, out: Path | None = OutOpt, detector: str = DetOpt,
    embedder: str | None = EmbedOpt, cache: Path | None = CacheOpt,
    select: str = SelectOpt,
) -> None:
    """Degradation of EER and TAR@FAR under occlusion, blur, noise, JPEG, downscaling and rotation."""
    try:
        from facelens.evaluate.protocols import read_pairs
        from facelens.evaluate.robustness import evaluate_robustness, perturbations, robustness_report

        pair_set = read_pairs(pairs, root)
        if subset and subset < len(pair_set.pairs):
            pair_set = pair_set.subset(subset, seed)
        pipe = _pipeline(detector, embedder)
        emb = _embeddings(cache, pipe, select)
        rows = evaluate_robustness(pair_set, perturbations(kinds), pipe, emb, redetect=redetect, seed=seed)
        if cache:
            emb.save(cache)
        result = {"model_id": pipe.model_id, "pairs": pair_set.source, "redetect": redetect,
                  "rows": [r.to_dict() for r in rows]}
        if out:
            result["report"] = str(robustness_report(rows, out, f"Robustness: {pairs.name}", pipe.model_id))
    except (FacelensError, ValueError) as exc:
        fail(exc)
    if json_out:
        return _emit(result, True)
    _table(f"Robustness ({pipe.model_id}, {len(pair_set.pairs)} pairs)",
           [{"perturbation": r.perturbation, "FTE pairs": r.n_fte_pairs, "EER": r.eer, "±": r.eer_se,
             "ΔEER": r.delta_eer, "AUC": r.auc, "TAR@1e-2": r.tar_at_far.get("0.01", math.nan)} for r in rows])


@app.command()
def identity(
    originals: Path = typer.Option(..., "--originals", exists=True, file_okay=False),
    processed: Path = typer.Option(..., "--processed", exists=True, file_okay=False),
    threshold: float | None = typer.Option(None, "--threshold", help="default: the model's verification threshold"),
    json_out: bool = JsonOpt, detector: str = DetOpt, embedder: str | None = EmbedOpt,
) -> None:
    """Identity preservation between originals and processed copies (same file names): mean similarity and the
    share still matching."""
    try:
        from facelens.evaluate.identity import aligned_sets, identity_preservation

        res = identity_preservation(aligned_sets(originals, processed), threshold, _pipeline(detector, embedder))
    except (FacelensError, ValueError) as exc:
        fail(exc)
    if json_out:
        return _emit(res.to_dict(), True)
    _table("Identity preservation", res.to_dict(per_pair=False))


@app.command()
def anonymization(
    original: Path = typer.Argument(..., help="Original image, folder of images, or video."),
    anonymised: Path = typer.Argument(..., help="Its anonymised copy (same relative paths for a folder)."),
    identity: str = typer.Option("file", help="Who is who: file (each original its own identity) or folder "
                                              "(the image's parent folder names the person, as in LFW)."),
    detector: str = typer.Option(DEFAULT_DETECTOR, help=DETECTOR_HELP, callback=known_detector),
    fail_above: float = typer.Option(None, "--fail-above", help="Exit 1 when the re-identification rate (rank 1 "
                                                                "or at the threshold) is above this."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """How much an anonymisation leaks: re-identification by facelens' recogniser (rank 1 and at the default
    threshold) of the anonymised faces against the originals, faces left visible, and for video leaked frames."""
    from facelens.cli.options import IMAGE_SUFFIXES
    from facelens.evaluate.anonymization import evaluate_images, evaluate_video
    from facelens.io.video import VIDEO_EXTENSIONS

    try:
        if identity not in ("file", "folder"):
            raise typer.BadParameter("--identity is file or folder")
        if original.suffix.lower() in VIDEO_EXTENSIONS and original.is_file():
            if not anonymised.is_file():
                raise FacelensError(f"{anonymised}: no such video")
            report = evaluate_video(original, anonymised, detector=detector)
        else:
            if original.is_dir():
                files = sorted(p for p in original.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
                base = anonymised / original.name if (anonymised / original.name).is_dir() else anonymised
                pairs = [(p, base / p.relative_to(original)) for p in files]
            else:
                pairs = [(original, anonymised / original.name if anonymised.is_dir() else anonymised)]
            missing = [str(b) for _, b in pairs if not b.is_file()]
            pairs = [(a, b) for a, b in pairs if b.is_file()]
            if not pairs:
                raise FacelensError(f"no anonymised copy of {original} found in {anonymised}")
            names = [a.parent.name if identity == "folder" else str(a) for a, _ in pairs]
            report = evaluate_images([a for a, _ in pairs], [b for _, b in pairs], names, detector=detector)
            report.missing = missing + report.missing
    except (FacelensError, ValueError, typer.BadParameter) as exc:
        fail(exc)
    data = report.to_dict()
    if as_json:
        emit(data)
    else:
        _table(f"anonymisation leakage: {anonymised}", {k: v for k, v in data.items() if k != "missing"})
    if fail_above is not None and max(data["rank1_rate"], data["threshold_rate"]) > fail_above:
        raise typer.Exit(1)


@app.command()
def expression(
    data: Path = typer.Argument(..., exists=True, help="a folder with one sub-folder of images per class, or a CSV path,label"),
    model: str | None = typer.Option(None, "--model", help="expression model by name (default: the library's)"),
    face_crops: bool = typer.Option(False, "--face-crops", help="each image is one face crop (FER2013/CK+ style): no detection"),
    json_out: bool = JsonOpt, out: Path | None = OutOpt, detector: str = DetOpt,
) -> None:
    """Expression accuracy, macro-F1, per-class recall and the confusion matrix on your own labelled faces.
    ``--out DIR`` writes report.json, predictions.jsonl and confusion.png."""
    import json

    from facelens.cli.output import progress_bar

    try:
        from facelens.analyze.expression import DEFAULT_EXPRESSION_MODEL, get_expression_model
        from facelens.cli.analyze import known_expression_model
        from facelens.evaluate.expression import confusion_png, expression_report, labelled_faces, predict_expressions

        name = known_expression_model(model) or DEFAULT_EXPRESSION_MODEL
        classes = get_expression_model(name).labels
        items = labelled_faces(data)
        with progress_bar(len(items)) as bar:
            task = bar.add_task("classifying", total=len(items))
            predicted = predict_expressions([p for p, _ in items], name, face_crops, detector,
                                            progress=lambda done, total: bar.update(task, completed=done))  # fmt: skip
        report = expression_report([t for _, t in items], predicted, name, classes)
        report.extra["data"] = str(data)
        result = report.to_dict()
        if out:
            out.mkdir(parents=True, exist_ok=True)
            (out / "report.json").write_text(json.dumps(result, indent=1))
            with open(out / "predictions.jsonl", "w") as handle:
                for (path, truth), guess in zip(items, predicted):
                    handle.write(json.dumps({"path": str(path), "label": truth, "predicted": guess}) + "\n")
            result["png"] = str(confusion_png(report, out / "confusion.png"))
    except (FacelensError, ValueError) as exc:
        fail(exc)
    if json_out:
        return _emit(result, True)
    _table(f"Expression ({name}) on {data}", {"faces": report.n, "accuracy": report.accuracy,
                                               "macro-F1": report.macro_f1, "missed faces": report.missed})
    _table("Per class", [{"class": c, "n": sum(report.confusion[i]), "recall": report.recall[c],
                          "precision": report.precision[c]} for i, c in enumerate(report.classes)])
    _table("Confusion (rows: true, columns: predicted)",
           [{"true": c, **dict(zip(report.predicted_classes, row))} for c, row in zip(report.classes, report.confusion)])
