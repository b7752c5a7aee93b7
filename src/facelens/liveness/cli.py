"""``facelens liveness``: active check of a clip, passive check of an image, evaluation and fusion fitting.

``facelens liveness CLIP.mp4`` runs the active (blink) check: an argument that is not a subcommand name is
routed to the ``clip`` command, so the bare form and ``facelens liveness eval DIR`` both work when mounted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from facelens.cli_support import default_command_group, fail
from facelens.cli_support import out as stdout
from facelens.detect import DEFAULT_DETECTOR, DETECTOR_HELP
from facelens.errors import FacelensError

app = typer.Typer(
    cls=default_command_group("clip"),
    help="Presentation-attack detection: is the face live? (`facelens liveness CLIP.mp4`, `eval`, `fit`, `image`).",
    no_args_is_help=True,
)


def _metrics_table(title: str, rows: dict) -> Table:
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
    detector: Annotated[str, typer.Option(help=DETECTOR_HELP)] = DEFAULT_DETECTOR,
    max_seconds: Annotated[float, typer.Option(help="Read at most this many seconds.")] = 30.0,
    min_blinks: Annotated[int, typer.Option(help="Blinks needed to call the clip live.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Active liveness: blinks (eye aspect ratio) and head movement over a clip."""
    from facelens.liveness.active import check_clip

    try:
        result = check_clip(clip, detector=detector, max_seconds=max_seconds, min_blinks=min_blinks)
    except (FacelensError, ValueError) as exc:
        fail(exc)
        return
    out = {"clip": str(clip), **result.to_dict()}
    if as_json:
        typer.echo(json.dumps(out))
        return
    verdict = "[green]LIVE[/green]" if result.is_live else "[red]SPOOF / not shown live[/red]"
    stdout.print(
        f"{clip}: {verdict}  ({len(result.blinks)} blink(s), {result.frames_with_face}/{result.frames} frames with the face)"
    )
    table = Table("blink", "start s", "end s", "min EAR")
    for i, b in enumerate(result.blinks, 1):
        table.add_row(str(i), f"{b['start']:.2f}", f"{b['end']:.2f}", f"{b['min_ear']:.3f}")
    if result.blinks:
        stdout.print(table)
    stdout.print(
        f"open-eye EAR {result.open_ear:.3f} · head pose range {result.pose_range:.3f} · travel {result.translation:.2f} face sizes"
    )


@app.command("image")
def image_cmd(
    image: Annotated[Path, typer.Argument(help="Image file.")],
    model: Annotated[str, typer.Option(help="minifasnet (default) or minifas_celeba128.")] = "minifasnet",
    fusion: Annotated[Path | None, typer.Option(help="Fusion file from `facelens liveness fit`.")] = None,
    detector: Annotated[str, typer.Option(help=DETECTOR_HELP)] = DEFAULT_DETECTOR,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Passive liveness of every face in one image."""
    from facelens.io.image import decode_image
    from facelens.liveness.checker import get_checker
    from facelens.pipeline import get_pipeline

    try:
        rgb = decode_image(image)
        faces = get_pipeline(detector=detector).detector.detect(rgb)
        results = get_checker(model, fusion).check_many(rgb, faces)
    except (FacelensError, ValueError) as exc:
        fail(exc)
        return
    rows = [{"box": f.to_dict()["box"], **r.to_dict(with_details=True)} for f, r in zip(faces, results)]
    if as_json:
        typer.echo(json.dumps({"path": str(image), "faces": rows}))
        return
    if not rows:
        stdout.print(f"{image}: no face found (nothing can be accepted as live)")
        return
    table = Table("face", "box", "score", "live?", "model")
    for i, r in enumerate(rows):
        table.add_row(str(i), str(r["box"]), f"{r['score']:.4f}", "yes" if r["is_live"] else "no", r["model"])
    stdout.print(table)


@app.command("eval")
def eval_cmd(
    data_dir: Annotated[Path, typer.Argument(help="Folder with live/ and spoof/ subfolders.")],
    model: Annotated[str, typer.Option(help="minifasnet (default) or minifas_celeba128.")] = "minifasnet",
    fusion: Annotated[
        Path | None, typer.Option(help="Evaluate the fusion in this file instead of the model alone.")
    ] = None,
    detector: Annotated[str, typer.Option(help=DETECTOR_HELP)] = DEFAULT_DETECTOR,
    threshold: Annotated[
        float | None, typer.Option(help="Operating threshold (default: the model's or the fusion's).")
    ] = None,
    target_bpcer: Annotated[float, typer.Option(help="Also pick the threshold that meets this BPCER.")] = 0.05,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """ISO/IEC 30107-3 APCER, BPCER, ACER (+ accuracy, precision, recall, F1) on a labelled folder."""
    from facelens.liveness.evaluate import evaluate

    try:
        report = evaluate(
            data_dir, model=model, detector=detector, fusion=fusion, threshold=threshold, target_bpcer=target_bpcer
        )
    except (FacelensError, ValueError) as exc:
        fail(exc)
        return
    if as_json:
        typer.echo(json.dumps(report))
        return
    stdout.print(
        f"{report['data']}: {report['images']} images, model {report['model']}, detector {report['detector']}, "
        f"AUC {report['auc']:.4f}, no face found in {report['no_face']} (counted as rejected)"
    )
    stdout.print(_metrics_table("operating threshold", {"op": report["metrics"]}))
    stdout.print(_metrics_table(f"threshold for BPCER ≤ {target_bpcer}", {"t": report["at_target_bpcer"]}))


@app.command("fit")
def fit_cmd(
    data_dir: Annotated[Path, typer.Argument(help="Folder with live/ and spoof/ subfolders.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the fusion file.")] = Path(
        "liveness_fusion.json"
    ),
    model: Annotated[str, typer.Option(help="minifasnet (default) or minifas_celeba128.")] = "minifasnet",
    detector: Annotated[str, typer.Option(help=DETECTOR_HELP)] = DEFAULT_DETECTOR,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
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
        fail(exc)
        return
    summary = {"out": str(out), "threshold": fusion.threshold, **fusion.trained_on}
    if as_json:
        typer.echo(json.dumps(summary))
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
