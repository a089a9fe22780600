"""The API room: `/v1`'s thin routers over the rooms' use-case objects, the API key dependency, error handlers.

PUT HERE: HTTP concerns of `/v1` — which route reads what from the request, authentication by API key,
answering with the wire object a use case returns, `Idempotency-Key` replay, the OpenAPI additions.
DO NOT PUT HERE: engine or pipeline code (never import engine/, torch, diffusers or celery), use cases
(they live in the room that owns the concept, for every front end), SQL, media encoding.
"""
