"""``facelens liveness``: active check of a clip, passive check of an image, evaluation and fusion fitting.

``facelens liveness CLIP.mp4`` runs the active (blink) check: an argument that is not a subcommand name is
routed to the ``clip`` command, so the bare form and ``facelens liveness eval DIR`` both work.
``facelens liveness image INPUTS...`` scores every face of every image (one JSON line per image with ``--json``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facelens.cli.options import DEFAULT_DETECTOR, Detector, Images, Json, expand_inputs
from facelens.cli.output import FAILED, USAGE, default_command_group, emit, error_line, exit_code, fail, message
from facelens.cli.output import out as stdout
from facelens.cli.output import progress_bar
from facelens.errors import FacelensError

app = typer.Typer(
    cls=default_command_group("clip"),
    help="Presentation-attack detection: is the face live? (`facelens liveness CLIP.mp4`, `eval`, `fit`, `image`).",
    no_args_is_help=True,
)


def _metrics_table(title: str, rows: dict):
    from rich.table import Table

    table = Table(title=title)
    for col in ("threshold", "APCER", "BPCER", "ACER", "accuracy", "precision", "recall", "F1"):
        table.add_column(col, justify="right")
    for m in rows.values():
        table.add_row(
            *(f"{m[k]:.4f}" for k in ("threshold", "apcer", "bpcer", "acer", "accuracy", "precision", "recall", "f1"))
        )
    return table


@app.command("clip")
def clip_cmd(
    clip: Annotated[Path, typer.Argument(help="Video file (mp4, avi...) of one person facing the camera.")],
    detector: Detector = DEFAULT_DETECTOR,
    max_seconds: Annotated[float, typer.Option(help="Read at most this many seconds.")] = 30.0,
    min_blinks: Annotated[int, typer.Option(help="Blinks needed to call the clip live.")] = 1,
    signal: Annotated[
        str | None,
        typer.Option(help="Eye signal blinks are found in: blendshapes (MediaPipe eyeBlink scores, the default when "
                          "ai-edge-litert is installed), ear (eye aspect ratio of dlib's 68 landmarks) or eye_state "
                          "(Open Model Zoo's open/closed-eye classifier)."),
    ] = None,
    as_json: Json = False,
) -> None:
    """Active liveness: blinks (blendshapes or eye aspect ratio) and head movement over a clip. Exit 1 when the clip cannot be read
    (a clip that is not live is an answer: exit 0)."""
    from rich.table import Table

    from facelens.liveness.active import check_clip

    try:
        result = check_clip(clip, detector=detector, max_seconds=max_seconds, min_blinks=min_blinks,
                            signal=signal)
    except (FacelensError, ValueError) as exc:
        code = exit_code(exc) if isinstance(exc, FacelensError) else USAGE
        if as_json and code == FAILED:
            emit({"clip": str(clip), "error": message(exc)})
            raise typer.Exit(code) from None
        fail(exc, code)
    out = {"clip": str(clip), **result.to_dict(), "error": None}
    if as_json:
        emit(out)
        return
    verdict = "[green]LIVE[/green]" if result.is_live else "[red]SPOOF / not shown live[/red]"
    stdout.print(
        f"{clip}: {verdict}  ({len(result.blinks)} blink(s), {result.frames_with_face}/{result.frames} frames with the face)"
    )
    table = Table("blink", "start s", "end s", "min openness")
    for i, b in enumerate(result.blinks, 1):
        table.add_row(str(i), f"{b['start']:.2f}", f"{b['end']:.2f}", f"{b['min_openness']:.3f}")
    if result.blinks:
        stdout.print(table)
    stdout.print(
        f"open-eye level ({result.signal}) {result.open_level:.3f} · head pose range {result.pose_range:.3f} · travel {result.translation:.2f} face sizes"
    )


@app.command("image")
def image_cmd(
    images: Images,
    model: Annotated[str, typer.Option(help="minifasnet (default) or minifas_celeba128.")] = "minifasnet",
    fusion: Annotated[Path | None, typer.Option(help="Fusion file from `facelens liveness fit`.")] = None,
    detector: Detector = DEFAULT_DETECTOR,
    as_json: Json = False,
) -> None:
    """Passive liveness of every face in each image. Exit 1 when an input failed."""
    from rich.table import Table

    from facelens.io.image import decode_image
    from facelens.liveness.checker import get_checker
    from facelens.engine import models

    try:
        sources = expand_inputs(images)
        found_by = models(detector=detector).detector
        checker = get_checker(model, fusion)
    except (FacelensError, ValueError) as exc:
        fail(exc, USAGE)
    failed = 0
    table = Table("image", "face", "box", "score", "live?", "model")
    with progress_bar(len(sources)) as progress:
        task = progress.add_task("liveness", total=len(sources))
        for source in sources:
            progress.advance(task)
            try:
                rgb = decode_image(source)
                faces = found_by.detect(rgb)
                results = checker.check_many(rgb, faces)
            except FacelensError as exc:
                if exit_code(exc) == USAGE:
                    fail(exc)
                failed += 1
                if as_json:
                    emit({"path": source, "faces": [], "error": message(exc)})
                else:
                    error_line(f"{source}: {message(exc)}")
                continue
            rows = [{"box": f.to_dict()["box"], **r.to_dict(with_details=True)} for f, r in zip(faces, results)]
            if as_json:
                emit({"path": source, "faces": rows, "error": None})
            elif not rows:
                stdout.print(f"{source}: no face found (nothing can be accepted as live)", markup=False)
            for i, r in enumerate(rows):
                table.add_row(source, str(i), str(r["box"]), f"{r['score']:.4f}", "yes" if r["is_live"] else "no",
                              r["model"])
    if not as_json and table.row_count:
        stdout.print(table)
    if failed:
        raise typer.Exit(FAILED)


@app.command("eval")
def eval_cmd(
    data_dir: Annotated[Path, typer.Argument(help="Folder with live/ and spoof/ subfolders.")],
    model: Annotated[str, typer.Option(help="minifasnet (default) or minifas_celeba128.")] = "minifasnet",
    fusion: Annotated[
        Path | None, typer.Option(help="Evaluate the fusion in this file instead of the model alone.")
    ] = None,
    detector: Detector = DEFAULT_DETECTOR,
    threshold: Annotated[
        float | None, typer.Option(help="Operating threshold (default: the model's or the fusion's).")
    ] = None,
    target_bpcer: Annotated[float, typer.Option(help="Also pick the threshold that meets this BPCER.")] = 0.05,
    as_json: Json = False,
) -> None:
    """ISO/IEC 30107-3 APCER, BPCER, ACER (+ accuracy, precision, recall, F1) on a labelled folder."""
    from facelens.liveness.evaluate import evaluate

    try:
        report = evaluate(
            data_dir, model=model, detector=detector, fusion=fusion, threshold=threshold, target_bpcer=target_bpcer
        )
    except (FacelensError, ValueError) as exc:
        fail(exc, USAGE)
    if as_json:
        emit(report)
    else:
        stdout.print(
            f"{report['data']}: {report['images']} images, model {report['model']}, detector {report['detector']}, "
            f"AUC {report['auc']:.4f}, no face found in {report['no_face']} (counted as rejected)"
        )
        stdout.print(_metrics_table("operating threshold", {"op": report["metrics"]}))
        stdout.print(_metrics_table(f"threshold for BPCER ≤ {target_bpcer}", {"t": report["at_target_bpcer"]}))
        for item in report["unreadable"]:
            error_line(f"not scored: {item['error']}")
    if report["unreadable"]:  # files that could not be read are failed inputs, never silently left out
        raise typer.Exit(FAILED)


@app.command("fit")
def fit_cmd(
    data_dir: Annotated[Path, typer.Argument(help="Folder with live/ and spoof/ subfolders.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the fusion file.")] = Path(
        "liveness_fusion.json"
    ),
    model: Annotated[str, typer.Option(help="minifasnet (default) or minifas_celeba128.")] = "minifasnet",
    detector: Detector = DEFAULT_DETECTOR,
    as_json: Json = False,
) -> None:
    """Fit the fusion of the model score with the frequency/texture cues on labelled faces."""
    from facelens.liveness.dataset import score_folder
    from facelens.liveness.fusion import fit_fusion

    try:
        data = score_folder(data_dir, model=model, detector=detector)
        found = data.found
        fusion = fit_fusion(
            data.model_scores[found],
            data.features[found],
            data.is_live[found],
            model=model,
            trained_on={"data": str(data_dir), "detector": detector, "no_face": data.no_face},
        )
        fusion.save(out)
    except (FacelensError, ValueError) as exc:
        fail(exc, USAGE)
    summary = {"out": str(out), "threshold": fusion.threshold, **fusion.trained_on}
    if as_json:
        emit(summary)
        return
    stdout.print(
        f"wrote {out} (threshold {fusion.threshold:.4f}; {summary['n_live']} live, {summary['n_spoof']} spoof faces)"
    )
    stdout.print(
        _metrics_table(
            "5-fold cross-validated (out-of-fold) figures",
            {"fused": summary["cv_fused"], "frequency": summary["cv_frequency"]},
        )
    )
