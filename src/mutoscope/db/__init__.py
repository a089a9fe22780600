"""The database room: SQLAlchemy 2 models, the session factory, repositories, Alembic.

PUT HERE: tables, queries that several rooms share (claiming the next job,
cursor pagination), migrations.
DO NOT PUT HERE: business rules (accounts/, jobs/), HTTP, engine code. Nothing
here imports from the rooms above it. Every query that returns user objects
takes the owner's id: another user's id behaves exactly like an unknown one.
"""
