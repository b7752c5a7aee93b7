"""The service's routers, one per resource; ``create_app`` includes them in this order (adding one is one line)."""

from facelens.service.routes import console, faces, galleries, health, keys, people, recognize

ROUTERS = (
    health.router,
    keys.router,
    recognize.router,
    galleries.router,
    people.router,
    faces.router,
    console.router,
)
