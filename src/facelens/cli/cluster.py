"""``facelens cluster DIR... -g GALLERY``: find the people in folders of photos, and correct the result.

The first run detects and embeds every face; later runs process only new or changed files. Faces that clear the
open-set threshold join the gallery's people; the rest are clustered into anonymous people ``unknown-N``. Then
``name``, ``merge``, ``split``, ``remove``, ``not`` and ``different`` correct it, and every later run keeps the
corrections. ``--json`` prints one line per face (path, box, detection id, person or cluster, score) and a summary.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from facelens.cli.options import (
    Collection, Detector, Fpir, Gallery, Images, Json, NewGalleryEmbedder, Ray, Threshold, Workers, expand_inputs,
    new_gallery_model, ray_runner, ray_summary,
)  # fmt: skip
from facelens.cli.output import FAILED, USAGE, default_command_group, emit, err, error_line, fail, out, progress_bar
from facelens.detect import DEFAULT_DETECTOR
from facelens.errors import FacelensError

app = typer.Typer(
    cls=default_command_group("run"),
    help="Cluster the faces of photo folders into people (incrementally) and correct the clusters.",
    no_args_is_help=True,
)

DetectionIds = Annotated[list[int], typer.Option("--detection", "-d", help="A face's detection id (repeatable).")]


def _open(gallery: str, collection: str, create: bool = False, model_id: str | None = None):
    from facelens.gallery import open_gallery

    return open_gallery(gallery, create=create, collection=collection, model_id=model_id)


def _face_records(store, person: str | None = None) -> list[dict]:
    from facelens.cluster import is_anonymous

    return [{**d.to_dict(), "cluster": d.person is not None and is_anonymous(d.person)}
            for d in store.detections(person=person)]


@app.command("run")
def cluster_run(
    inputs: Images,
    gallery: Gallery = ...,
    collection: Collection = "default",
    method: Annotated[str, typer.Option("--method", help="hdbscan (default) or incremental (Immich's rule).")] = "hdbscan",
    min_size: Annotated[Optional[int], typer.Option("--min-size", help="Smallest cluster that becomes a person.")] = None,
    min_quality: Annotated[float, typer.Option(
        "--min-quality", help="Faces under this quality score (0..1; 0 = off) neither cluster nor enrol.")] = 0.15,
    min_face: Annotated[float, typer.Option(
        "--min-face", help="Faces with a shorter box side (pixels; 0 = off) neither cluster nor enrol.")] = 24.0,
    fpir: Fpir = 0.01,
    threshold: Threshold = None,
    detector: Detector = DEFAULT_DETECTOR,
    embedder: NewGalleryEmbedder = None,
    workers: Workers = 0,
    json_out: Json = False,
    ray: Ray = None,
) -> None:
    """Detect and embed new or changed photos, attach faces to known people, cluster the rest (with --ray the
    detection and embedding run on Ray; storing and clustering stay here)."""
    from facelens.cluster import METHODS, QualityGate, cluster_photos

    if method not in METHODS:
        fail(typer.BadParameter(f"unknown method {method!r}; choose one of {', '.join(METHODS)}"), USAGE)
    try:
        paths = expand_inputs(inputs)
        gate = QualityGate(min_quality=min_quality or None, min_size=min_face or None)
        runner = ray_runner(ray, workers)
        with _open(gallery, collection, create=True, model_id=new_gallery_model(embedder)) as store, \
                progress_bar(len(paths)) as bar:
            task = bar.add_task("photos", total=len(paths))
            report = cluster_photos(store, paths, detector=detector, method=method, gate=gate, min_size=min_size,
                                    threshold=threshold, fpir=fpir, workers=workers or None, runner=runner,
                                    progress=lambda done, total: bar.update(task, completed=done))
            faces = _face_records(store)
    except (FacelensError, ValueError, OSError) as exc:
        fail(exc, USAGE)
    ray_summary(runner)
    for failure in report.failed:
        error_line(failure["error"])
    if json_out:
        for record in faces:
            emit(record)
        emit({"summary": report.to_dict()})
    else:
        out.print(f"{report.files} photos ({report.processed} processed, {report.unchanged} unchanged, "
                  f"{len(report.failed)} failed): {report.faces_found} new faces, {report.low_quality} of low quality; "
                  f"{report.attached} joined people, {report.clustered} in {len(report.new_people)} new clusters, "
                  f"{report.unclustered} unclustered")
    if report.failed:
        raise typer.Exit(FAILED)


@app.command("people")
def cluster_people(gallery: Gallery = ..., collection: Collection = "default", json_out: Json = False) -> None:
    """People and clusters with their face counts."""
    from facelens.cluster import is_anonymous

    try:
        with _open(gallery, collection) as store:
            people = store.people()
    except (FacelensError, ValueError) as exc:
        fail(exc, USAGE)
    if json_out:
        for p in people:
            emit({"name": p.name, "faces": p.face_count, "cluster": is_anonymous(p.name)})
        return
    from rich.table import Table

    table = Table("name", "faces", "cluster")
    for p in people:
        table.add_row(p.name, str(p.face_count), "yes" if is_anonymous(p.name) else "")
    out.print(table)


@app.command("faces")
def cluster_faces(
    person: Annotated[Optional[str], typer.Argument(help="Only this person's faces.")] = None,
    gallery: Gallery = ..., collection: Collection = "default", json_out: Json = False,
) -> None:
    """The library's faces (detection id, photo, box, state, person)."""
    try:
        with _open(gallery, collection) as store:
            faces = _face_records(store, person)
    except (FacelensError, ValueError) as exc:
        fail(exc, USAGE)
    for record in faces:
        if json_out:
            emit(record)
        else:
            out.print(f"{record['detection']:>6}  {record['state']:<11} {record['person'] or '-':<20} {record['path']}",
                      markup=False, highlight=False)


def _correct(gallery: str, collection: str, json_out: bool, apply, **fields) -> None:
    try:
        with _open(gallery, collection) as store:
            result = apply(store)
    except (FacelensError, ValueError) as exc:
        fail(exc, USAGE)
    record = {**fields, "result": result}
    if json_out:
        emit(record)
    else:
        err.print(" ".join(f"{k}={v}" for k, v in record.items()), markup=False, highlight=False)


@app.command("name")
def cluster_name(person: str, name: str, gallery: Gallery = ..., collection: Collection = "default",
                 json_out: Json = False) -> None:
    """Name a cluster: every face in it is enrolled as NAME (merged if NAME exists)."""
    from facelens.cluster import name_person

    _correct(gallery, collection, json_out, lambda g: name_person(g, person, name), action="name", person=person)


@app.command("merge")
def cluster_merge(source: str, target: str, gallery: Gallery = ..., collection: Collection = "default",
                  json_out: Json = False) -> None:
    """Move every face of SOURCE to TARGET (refused if they were marked different)."""
    from facelens.cluster import merge_people

    _correct(gallery, collection, json_out, lambda g: merge_people(g, source, target), action="merge",
             source=source, target=target)


@app.command("split")
def cluster_split(person: str, detection: DetectionIds, into: Annotated[Optional[str], typer.Option(
    "--into", help="Existing or new person to move them to (default: a new cluster).")] = None,
                  gallery: Gallery = ..., collection: Collection = "default", json_out: Json = False) -> None:
    """Move some faces of PERSON to another person; they are marked not PERSON."""
    from facelens.cluster import split_person

    _correct(gallery, collection, json_out, lambda g: split_person(g, person, detection, into), action="split",
             person=person, detections=detection)


@app.command("remove")
def cluster_remove(detection: DetectionIds, gallery: Gallery = ..., collection: Collection = "default",
                   json_out: Json = False) -> None:
    """Dismiss faces: they leave their person and never come back."""
    from facelens.cluster import remove_faces

    _correct(gallery, collection, json_out, lambda g: remove_faces(g, detection), action="remove",
             detections=detection)


@app.command("not")
def cluster_not(person: str, detection: DetectionIds, gallery: Gallery = ..., collection: Collection = "default",
                json_out: Json = False) -> None:
    """These faces are not PERSON: never clustered into or identified as PERSON again."""
    from facelens.cluster import not_person

    _correct(gallery, collection, json_out, lambda g: not_person(g, detection, person), action="not", person=person,
             detections=detection)


@app.command("different")
def cluster_different(a: str, b: str, gallery: Gallery = ..., collection: Collection = "default",
                      json_out: Json = False) -> None:
    """A and B are different people: never merged."""
    from facelens.cluster import different_people

    _correct(gallery, collection, json_out, lambda g: different_people(g, a, b), action="different", a=a, b=b)
