"""Prediction store: SQLAlchemy models, the session helper, queries, importers and the job queue."""
