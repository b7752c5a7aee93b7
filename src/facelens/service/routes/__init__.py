"""The service's routers, one per resource; ``create_app`` includes them in this order (adding one is one line)."""

from facelens.service.routes import anonymize, clusters, console, faces, galleries, health, keys, people, recognize

ROUTERS = (
    health.router,
    keys.router,
    recognize.router,
    anonymize.router,
    galleries.router,
    people.router,
    faces.router,
    clusters.router,
    console.router,
)
