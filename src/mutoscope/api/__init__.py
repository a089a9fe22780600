"""The API room: the FastAPI app factory, thin routers, serving classes, error handlers.

PUT HERE: HTTP concerns — parsing requests (JSON and multipart), authentication,
turning service results into wire objects and errors into OpenAI's envelope.
DO NOT PUT HERE: engine or pipeline code (never import engine/, torch, diffusers or
celery), SQL beyond what a serving class asks of db/repositories, media encoding.
"""
