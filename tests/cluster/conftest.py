"""The photo library the clustering tests share: copied LFW photos of recurring people plus singletons."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from helpers import need_data

#: People of the identification subset used as the library's recurring people, and singletons as noise.
PEOPLE, PER_PERSON, SINGLETONS = 8, 8, 24


@pytest.fixture(scope="session")
def library_photos(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A folder of copied LFW photos (8 people x 8 photos + 24 people with one photo) and each file's person."""
    root = need_data("identity", "lfw")
    with open(root / "identification_subset.csv") as handle:
        rows = list(csv.DictReader(handle))
    by_person: dict[str, list[str]] = {}
    for row in rows:
        by_person.setdefault(row["person"], []).append(row["image"])
    chosen = sorted(by_person)[:: max(1, len(by_person) // PEOPLE)][:PEOPLE]
    folder = tmp_path_factory.mktemp("library")
    truth: dict[str, str] = {}
    for person in chosen:
        for image in by_person[person][:PER_PERSON]:
            target = folder / Path(image).name
            shutil.copy(root / image, target)
            truth[str(target.resolve())] = person
    lonely = [d for d in sorted((root / "lfw_deepfunneled").iterdir()) if len(list(d.iterdir())) == 1]
    for person_dir in lonely[:: max(1, len(lonely) // SINGLETONS)][:SINGLETONS]:
        source = next(person_dir.iterdir())
        shutil.copy(source, folder / source.name)
        truth[str((folder / source.name).resolve())] = person_dir.name
    return folder, truth
