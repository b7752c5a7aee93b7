"""``facelens analyze INPUTS...`` (expression, age/gender, quality per face) and ``facelens analyze fit DATA_DIR``.

An argument that is not a subcommand name is routed to the ``images`` command, so both the bare form and
``fit`` work (the root CLI mounts this app as ``analyze``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facelens.cli.options import DEFAULT_DETECTOR, Adapt, AdaptGroup, Detector, Images, Json, expand_inputs
from facelens.cli.output import FAILED, USAGE, default_command_group, emit, error_line, fail
from facelens.cli.output import out as stdout
from facelens.cli.output import progress_bar
from facelens.errors import FacelensError

ExpressionModelOpt = Annotated[
    str | None,
    typer.Option("--expression-model", help="Expression model by name (default: the library's; see `facelens analyze models`)."),
]


def known_expression_model(name: str | None) -> str | None:
    """``name`` if it is an expression model, else a usage error listing them."""
    from facelens.analyze.expression import expression_model_names

    if name is not None and name not in expression_model_names():
        raise ValueError(f"unknown expression model {name!r}; choose from {', '.join(expression_model_names())}")
    return name


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
        str,
        typer.Option(help="Comma-separated built-in heads: expression, age_gender, quality, blendshapes (52 MediaPipe "
                     "scores and the FACS action units they approximate; needs `pip install 'facelens[litert]'`)."),
    ] = "expression,age_gender,quality",
    expression_model: ExpressionModelOpt = None,
    adapt: Adapt = None,
    group_by: AdaptGroup = "folder",
    detector: Detector = DEFAULT_DETECTOR,
) -> None:
    """Analyse every face in each image. A head whose model is missing reports its error in its field
    (``"age_gender": {"error": ...}``) while the others answer. Exit 1 when an input failed."""
    from rich.table import Table

    from facelens.engine import FaceAnalyzer

    try:
        sources = expand_inputs(images)
        engine = FaceAnalyzer(detector=detector, tasks=("analyze",), heads=tuple(h for h in heads.split(",") if h),
                              custom_head=head, face_crops=face_crops, keep_images=annotate_dir is not None,
                              expression_model=known_expression_model(expression_model), adapt=adapt,
                              adapt_group=group_by)
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
        columns = ("image", "face", "box", "expression", "age", "gender", "quality", "reasons", "head", "action units")
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
                        _expression(f),
                        _age(f),
                        _gender(f),
                        f"{q['score']:.2f}" if q else "",
                        "; ".join(q["reasons"]) if q else "",
                        f"{h['label']} {h['score']:.2f}" if h else "",
                        _top_action_units(f),
                    )
                )
            if not r["faces"] and not r["error"]:
                rows.append((Path(r["path"]).name, "-", "no face", *[""] * 7))
        shown = [j for j in range(len(columns)) if j < 3 or any(row[j] for row in rows)]
        table = Table(title="facial analysis")
        for j in shown:
            table.add_column(columns[j], overflow="fold")
        for row in rows:
            table.add_row(*(row[j] for j in shown))
        stdout.print(table)
    if failed:
        raise typer.Exit(FAILED)


def _top_action_units(face: dict, shown: int = 3, floor: float = 0.2) -> str:
    """The strongest action units of a face (those above ``floor``), e.g. ``AU12 0.71, AU6 0.45``."""
    units = sorted(face.get("action_units", {}).items(), key=lambda kv: -kv[1])
    return ", ".join(f"{k} {v:.2f}" for k, v in units[:shown] if v >= floor)


def _expression(face: dict) -> str:
    e = face.get("expression")
    if not e:
        return ""
    text = f"{e['label']} {e['score']:.2f}"
    adapted = e.get("adapted")
    return text + (f" → {adapted['label']} {adapted['score']:.2f} ({adapted['method']})" if adapted else "")


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
    expression_model: ExpressionModelOpt = None,
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
        from facelens.analyze.expression import get_expression_model

        model = get_expression_model(known_expression_model(expression_model))
        X, base_labels, kept = face_features([p for p, _ in items], head.features, face_crops,
                                             expression_model=model.name)
        labels = [items[i][1] for i in kept]
        head.model_ids = {"expression": model.model_id}
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


@app.command("train")
def train_cmd(
    ferplus: Annotated[
        Path, typer.Option("--ferplus", help="Folder with FER+ ferplus_train.npz and ferplus_valid.npz (images, votes).")
    ],
    heads: Annotated[str, typer.Option(help="Comma-separated trained heads to fit (default: all).")] = "",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Folder for the fitted heads (default: the user cache).")
    ] = None,
    every: Annotated[int, typer.Option(help="Train on every N-th FER+ train face (1: all 28,558).")] = 1,
    as_json: Json = False,
) -> None:
    """Fit the FER+ expression heads (soft targets from the 10 votes), choose each one's regularisation on FER+
    valid and save them where `--expression-model NAME` finds them (the user cache unless --output)."""
    from facelens.analyze.expression_heads import TRAINED_HEADS, heads_dir, train_heads

    names = tuple(h for h in heads.split(",") if h) or tuple(TRAINED_HEADS)
    try:
        rows = train_heads(ferplus / "ferplus_train.npz", ferplus / "ferplus_valid.npz", names, output or heads_dir(),
                           every=every)
    except (FacelensError, ValueError) as exc:
        fail(exc, USAGE)
    if as_json:
        for row in rows:
            emit(row)
        return
    from rich.table import Table

    table = Table(title="expression heads fitted on FER+ train")
    for column in ("head", "backbones", "l2", "FER+ valid acc (7)", "(8)", "saved to"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["head"], "+".join(r["backbones"]), f"{r['l2']:g}", f"{r['valid_accuracy7']:.4f}",
                      f"{r['valid_accuracy8']:.4f}", r["path"])  # fmt: skip
    stdout.print(table)


@app.command("models")
def models_cmd(as_json: Json = False) -> None:
    """The expression models by name (the default marked), their classes and whether they are ready here."""
    from facelens.analyze.expression import DEFAULT_EXPRESSION_MODEL, expression_model_names, get_expression_model

    rows = []
    for name in expression_model_names():
        try:
            model = get_expression_model(name)
            row = {"name": name, "default": name == DEFAULT_EXPRESSION_MODEL, "labels": list(model.labels),
                   "model_id": model.model_id, "ready": True, "error": None}  # fmt: skip
        except FacelensError as exc:
            row = {"name": name, "default": name == DEFAULT_EXPRESSION_MODEL, "labels": [], "model_id": None,
                   "ready": False, "error": " ".join(str(exc).split())}  # fmt: skip
        rows.append(row)
    if as_json:
        for row in rows:
            emit(row)
        return
    from rich.table import Table

    table = Table(title="expression models")
    for column in ("name", "default", "classes", "ready"):
        table.add_column(column, overflow="fold")
    for r in rows:
        table.add_row(r["name"], "yes" if r["default"] else "", ", ".join(r["labels"]), "yes" if r["ready"] else r["error"])
    stdout.print(table)
