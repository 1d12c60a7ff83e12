"""The routes of `syncd run`, one router per concern: `webhooks`, `health`, `metrics`, `report`."""
