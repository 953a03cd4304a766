"""Chalice application: the Chalice object and blueprint registration only."""
from chalice import Chalice

from chalicelib.api.routes import api
from chalicelib.bootstrap import check_definitions
from chalicelib.handlers.entrypoints import handlers

# Cold start refuses invalid automation definitions (one message per problem), SPEC 2.
check_definitions()

app = Chalice(app_name="automation-runs", configure_logs=False)
app.register_blueprint(api)
app.register_blueprint(handlers)
