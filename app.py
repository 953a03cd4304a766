"""Chalice application: the Chalice object and blueprint registration only."""
from chalice import Chalice

from chalicelib.api.routes import api
from chalicelib.handlers.entrypoints import handlers

app = Chalice(app_name="automation-runs", configure_logs=False)
app.register_blueprint(api)
app.register_blueprint(handlers)
