"""Runs API blueprint (placeholder until the API module lands)."""
from chalice import Blueprint

api = Blueprint(__name__)
