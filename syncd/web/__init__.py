"""The HTTP surface of `syncd run` (FastAPI), apart from the daemon.

- `app`: `create_app(context)`;
- `context`: `WebContext` (settings, store, metrics, readiness, delivery intake, clock);
- `deps`: the dependencies the routes declare (context, access check, report query);
- `routers/`: `webhooks`, `health`, `metrics`, `report`.
"""
