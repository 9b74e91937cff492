"""ASGI entry point for `monitor serve --workers N` (uvicorn imports the app by name in each worker)."""

from monitor.config import load_config
from monitor.web.app import create_app

app = create_app(load_config(None))
