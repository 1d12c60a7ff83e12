"""The HTTP surface of `syncd run` (FastAPI): webhooks, health, metrics, report, dashboard.

- `app`: `create_app`, the routes of the contract.
"""
