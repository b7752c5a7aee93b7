"""``facelens analyze INPUTS...`` (expression, age/gender, quality per face) and ``facelens analyze fit DATA_DIR``.

An argument that is not a subcommand name is routed to the ``images`` command, so both the bare form and
``fit`` work (the root CLI mounts this app as ``analyze``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facelens.cli.options import DEFAULT_DETECTOR, Detector, Images, Json, expand_inputs
from facelens.cli.output import FAILED, USAGE, default_command_group, emit, error_line, fail
from facelens.cli.output import out as stdout
from facelens.cli.output import progress_bar
from facelens.errors import FacelensError

app = typer.Typer(
    cls=default_command_group("images"),
    help="Facial analysis: expression, age/gender, quality (`facelens analyze IMG...`) and custom heads (`fit`).",
    no_args_is_help=True,
)


@app.command("images")
def images_cmd(
    images: Images,
    as_json: Json = False,
    annotate_dir: Annotated[
        Path | None, typer.Option("--annotate", help="Write a copy of each image with boxes and labels here.")
    ] = None,
    face_crops: Annotated[
        bool,
        typer.Option("--face-crops", help="Each input is already one face crop (FER2013/CK+ style): no detection."),
    ] = False,
    head: Annotated[Path | None, typer.Option("--head", help="Custom head file from `facelens analyze fit`.")] = None,
    heads: Annotated[
        str, typer.Option(help="Comma-separated built-in heads: expression,age_gender,quality.")
    ] = "expression,age_gender,quality",
    detector: Detector = DEFAULT_DETECTOR,
) -> None:
    """Analyse every face in each image. A head whose model is missing reports its error in its field
    (``"age_gender": {"error": ...}``) while the others answer. Exit 1 when an input failed."""
    from rich.table import Table

    from facelens.engine import FaceAnalyzer

    try:
        sources = expand_inputs(images)
        engine = FaceAnalyzer(detector=detector, tasks=("analyze",), heads=tuple(h for h in heads.split(",") if h),
                              custom_head=head, face_crops=face_crops, keep_images=annotate_dir is not None)
    except (FacelensError, ValueError) as exc:
        fail(exc, USAGE)
    results, failed = [], 0
    with progress_bar(len(sources)) as progress:
        task = progress.add_task("analysing", total=len(sources))
        try:
            for result in engine.run(sources, progress=lambda done, total: progress.update(task, completed=done)):
                record = result.to_dict()
                if result.error is not None:
                    failed += 1
                    if not as_json:
                        error_line(f"{result.source}: {result.error}")
                if annotate_dir is not None and result.image is not None:
                    from facelens.draw import draw_faces
                    from facelens.io.image import save_image

                    save_image(draw_faces(result.image, result.faces), annotate_dir / f"{Path(result.source).stem}.jpg")
                if as_json:
                    emit(record)
                else:
                    results.append(record)
        except (FacelensError, ValueError) as exc:
            fail(exc, USAGE)  # a bad head file or option fails every input alike
    if not as_json:
        columns = ("image", "face", "box", "expression", "age", "gender", "quality", "reasons", "head")
        rows = []
        for r in results:
            for i, f in enumerate(r["faces"]):
                q = f.get("quality")
                h = f.get("head")
                rows.append(
                    (
                        Path(r["path"]).name,
                        str(i),
                        ",".join(f"{v:.0f}" for v in f["box"]),
                        f"{f['expression']['label']} {f['expression']['score']:.2f}" if "expression" in f else "",
                        _age(f),
                        _gender(f),
                        f"{q['score']:.2f}" if q else "",
                        "; ".join(q["reasons"]) if q else "",
                        f"{h['label']} {h['score']:.2f}" if h else "",
                    )
                )
            if not r["faces"] and not r["error"]:
                rows.append((Path(r["path"]).name, "-", "no face", *[""] * 6))
        shown = [j for j in range(len(columns)) if j < 3 or any(row[j] for row in rows)]
        table = Table(title="facial analysis")
        for j in shown:
            table.add_column(columns[j], overflow="fold")
        for row in rows:
            table.add_row(*(row[j] for j in shown))
        stdout.print(table)
    if failed:
        raise typer.Exit(FAILED)


def _age(face: dict) -> str:
    if "age_gender" in face.get("errors", {}):
        return "error"
    return f"{face['age']['years']:.0f}" if "age" in face else ""


def _gender(face: dict) -> str:
    return f"{face['gender']['label']} {face['gender']['confidence']:.2f}" if "gender" in face else ""


@app.command("fit")
def fit_cmd(
    data_dir: Annotated[Path, typer.Argument(help="Folder with one sub-folder of face images per label.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to save the head.")] = Path("head.joblib"),
    features: Annotated[str, typer.Option(help="Comma-separated: embedding, expression.")] = "embedding,expression",
    base: Annotated[
        str, typer.Option(help="`expression`: keep the expression label when the head is unsure; `none`.")
    ] = "none",
    name: Annotated[str, typer.Option(help="Name of the attribute (the key in results).")] = "custom",
    face_crops: Annotated[bool, typer.Option("--face-crops", help="Images are face crops: no detection.")] = False,
    as_json: Json = False,
) -> None:
    """Train a custom head (scikit-learn logistic regression) on face embeddings and/or expression probabilities."""
    from facelens.analyze.api import face_features, labelled_images
    from facelens.analyze.heads import CustomHead
    from facelens.engine import FaceAnalyzer

    try:
        items = labelled_images(data_dir)
        if not items:
            raise FacelensError(f"{data_dir} holds no images in label folders")
        head = CustomHead(
            name=name, features=tuple(f for f in features.split(",") if f), base=None if base == "none" else base
        )
        X, base_labels, kept = face_features([p for p, _ in items], head.features, face_crops)
        labels = [items[i][1] for i in kept]
        head.model_ids = {"expression": "fer_mini_xception"}
        if "embedding" in head.features:
            head.model_ids["embedding"] = FaceAnalyzer(workers=1).model_id
        head.fit(X, labels, base_labels)
        head.save(output)
    except (FacelensError, ValueError) as exc:
        fail(exc, USAGE)
    info = {**head.to_dict(), "path": str(output), "samples": len(kept), "skipped": len(items) - len(kept)}
    if as_json:
        emit(info)
    else:
        stdout.print(
            f"saved head [bold]{head.name}[/] to {output}: {len(kept)} faces, labels {', '.join(head.labels)}, "
            f"cross-validated accuracy {info['cv_accuracy']}, threshold {info['threshold']}"
        )
