"""Wire types: pydantic models mirroring ../shared/spec/openai-videos-openapi.yaml.

PUT HERE: request/response shapes of the HTTP API (OpenAI's fields first, then
ours, marked), the error envelope, and what every front end's reading and listing share (`base.py`:
the parsed `Body`, the JSON nesting bound checked before any parser runs, `cursor_page`).
DO NOT PUT HERE: validation that needs the database or the model registry
(that is the use cases' job), anything importing fastapi, sqlalchemy, torch or
another mutoscope room.
"""
