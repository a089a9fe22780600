"""assistants/: video generation as tools for chat assistants, over the Model Context Protocol.

PUT HERE:
- The MCP tools (`tools.py`): their JSON schemas and the descriptions a model reads, the translation of
  tool arguments into the same `Body` the /v1 routes hand to `VideoCommands`, waiting with progress
  notifications, and the shape of a result (page link, thumbnail image, MP4 resource link).
- The transports (`server.py`): the streamable-HTTP endpoint `mutoscope serve` mounts at /mcp, with
  its API-key check, and the stdio loop behind `mutoscope mcp`.

DO NOT PUT HERE:
- Rules about videos (validation, plans, quotas, consent, ownership): the tools call `VideoCommands` and
  `VideoQueries`, so a rule added there applies to the API, the web app and the assistants alike.
- Imports of `api/`, `web/` or `engine/`: the parts arrive already built (the server's one
  `Services` container in `serve`, from `server.py`; `wiring.py` for stdio).
- An HTTP client of our own API: the tools call the service in-process, never loop back over HTTP.
- The package name `mcp`, which would shadow the SDK.
"""
