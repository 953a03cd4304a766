"""Chalice application: the Chalice object, blueprint and middleware registration only."""
from chalicelib.api.application import ThreadSafeChalice
from chalicelib.api.routes import api
from chalicelib.bootstrap import check_definitions
from chalicelib.handlers.entrypoints import handlers
from chalicelib.observability import observe

# Cold start refuses invalid automation definitions (one message per problem), SPEC 2.
check_definitions()

app = ThreadSafeChalice(app_name="automation-runs", configure_logs=False)
# Every handler (routes, SQS, schedule, stream) runs inside it: Lambda context in the logs.
app.register_middleware(observe, "all")
app.register_blueprint(api)
app.register_blueprint(handlers)
