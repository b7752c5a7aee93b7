"""models.runtime.shared_model: one model per process, however many threads ask for it at once."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from facelens.models.runtime import shared_model


def test_threads_asking_at_once_share_one_build():
    builds = []

    class Slow:
        def __init__(self) -> None:
            time.sleep(0.05)  # a model file being read: long enough for every thread to arrive meanwhile
            builds.append(threading.get_ident())

    get = shared_model(Slow)
    with ThreadPoolExecutor(8) as pool:
        models = list(pool.map(lambda _: get(), range(8)))
    assert len(builds) == 1 and all(m is models[0] for m in models)

