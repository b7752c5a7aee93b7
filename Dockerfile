# syntax=docker/dockerfile:1
# facelens REST service + web console.  Build: docker build -t facelens .
# Run:   docker run -p 8000:8000 -v facelens-data:/data facelens
# Key:   docker run --rm -v facelens-data:/data facelens facelens keys create --scope admin
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    FACELENS_CACHE_DIR=/opt/facelens/models \
    FACELENS_GALLERY=/data/people \
    FACELENS_HOST=0.0.0.0 \
    FACELENS_PORT=8000

# libgomp: OpenMP runtime used by onnxruntime and faiss wheels
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/facelens/src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install ".[postgres]"

# Fetch every registered model once at build time (sha256-checked by the model registry), so containers start
# offline; a model that cannot be fetched is reported and then fetched on first use instead.
RUN python - <<'PY'
import facelens.analyze.models, facelens.liveness.models, facelens.models.catalog  # noqa: F401 (register specs)
from facelens.errors import FacelensError
from facelens.models.registry import registered, resolve
for spec in registered():
    try:
        resolve(spec.name)
        print("fetched", spec.name)
    except FacelensError as exc:
        print("not fetched:", spec.name, "-", exc)
PY

RUN useradd --system --uid 10001 --home-dir /data facelens \
    && mkdir -p /data && chown facelens /data
USER facelens
VOLUME /data
EXPOSE 8000

HEALTHCHECK --interval=15s --timeout=5s --start-period=60s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4)"

# uvicorn finishes in-flight requests on SIGTERM (up to FACELENS_GRACEFUL_TIMEOUT seconds)
STOPSIGNAL SIGTERM
CMD ["facelens", "serve"]
