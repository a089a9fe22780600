"""Wire types: pydantic models mirroring ../shared/spec/openai-videos-openapi.yaml.

PUT HERE: request/response shapes of the HTTP API (OpenAI's fields first, then
ours, marked), the error envelope.
DO NOT PUT HERE: validation that needs the database or the model registry
(that is serving's job), anything importing fastapi, sqlalchemy, torch or
another mutoscope room.
"""
