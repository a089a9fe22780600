"""What `/openapi.json` (and so `/docs`) says beyond what FastAPI infers: the API key scheme, and the request
bodies of the routes that read their body themselves (`http/body.py`: JSON or multipart, so FastAPI sees none).

With the scheme, /docs shows *Authorize* and sends the key as a bearer token; with the bodies, it shows each
create's fields and can send them, as JSON or as a multipart form with a file.
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from mutoscope.protocol.videos import CreateVideoRequest, EditVideoRequest, ExtendVideoRequest, RemixVideoRequest

SCHEME = "ApiKey"
# Reachable without a key: everything else under /v1 asks for one.
PUBLIC = ("/health", "/v1/verify")

# (path, method) -> (its JSON body, the multipart fields that are files: name -> description)
BODIES: dict[tuple[str, str], tuple[type[BaseModel], dict[str, str]]] = {
    ("/v1/videos", "post"): (CreateVideoRequest, {"input_reference": "The first frame: an image file."}),
    ("/v1/videos/{video_id}/remix", "post"): (RemixVideoRequest, {}),
    ("/v1/videos/extensions", "post"): (ExtendVideoRequest, {}),
    ("/v1/videos/edits", "post"): (EditVideoRequest, {"video": "The clip to edit: a video file."}),
}


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description,
                                 routes=app.routes)
            app.openapi_schema = complete(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def complete(schema: dict[str, Any]) -> dict[str, Any]:
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})[SCHEME] = {
        "type": "http", "scheme": "bearer",
        "description": "An API key of this server (msk-…): `mutoscope keys create`, or Settings → API keys "
                       "in the web app. Sent as `Authorization: Bearer <key>`, as the OpenAI SDKs do."}
    schemas = components.setdefault("schemas", {})
    for path, methods in schema.get("paths", {}).items():
        for method, op in methods.items():
            if not path.startswith("/v1/") or path.startswith(PUBLIC):
                continue
            op.setdefault("security", [{SCHEME: []}])
            if (path, method) in BODIES and "requestBody" not in op:
                op["requestBody"] = _body(*BODIES[(path, method)], schemas)
    return schema


def _body(model: type[BaseModel], files: dict[str, str], schemas: dict[str, Any]) -> dict[str, Any]:
    json_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in json_schema.pop("$defs", {}).items():
        schemas.setdefault(name, sub)
    schemas.setdefault(model.__name__, json_schema)
    content: dict[str, Any] = {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}
    # The same fields as form fields (objects as JSON text), with the files as binary parts.
    form = copy.deepcopy(json_schema)
    form.pop("title", None)
    props = form.setdefault("properties", {})
    for name, description in files.items():
        props[name] = {"type": "string", "format": "binary", "description": description}
    content["multipart/form-data"] = {"schema": form}
    return {"required": True, "content": content}
