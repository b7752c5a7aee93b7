"""Photo-library clustering: find the people in folders of unlabelled photos and keep the user's corrections.

``cluster_photos(gallery, folders)`` detects and embeds new or changed photos (through the engine) and clusters
pending faces; ``gallery.cluster()`` (= :func:`cluster_pending`) clusters what is stored, running no model.
Corrections (name, merge, split, remove, cannot-link) are in :mod:`facelens.cluster.corrections`.
"""

from facelens.cluster.corrections import (
    different_people,
    merge_people,
    name_person,
    not_person,
    remove_faces,
    split_person,
)
from facelens.cluster.library import ClusterReport, QualityGate, cluster_pending, cluster_photos, is_anonymous
from facelens.cluster.methods import METHODS
from facelens.cluster.metrics import ClusterScores, cluster_scores

__all__ = [
    "METHODS", "ClusterReport", "ClusterScores", "QualityGate", "cluster_pending", "cluster_photos", "cluster_scores",
    "different_people", "is_anonymous", "merge_people", "name_person", "not_person", "remove_faces", "split_person",
]  # fmt: skip
