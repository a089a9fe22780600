"""http/: the HTTP plumbing both front ends use, so `api/` and `web/` never import each other.

PUT HERE: reading a request body within a size limit (JSON, urlencoded or multipart, `body.py`) and the
app-wide body ceiling (`BodyLimit`); sending a stored file with Range and HEAD (`files.py`); turning every
failure into OpenAI's error envelope, or into the HTML page a browser gets (`errors.py`, handed the
renderer by `server.py`); what every response and URL goes through (`edge.py`: security headers, NUL
refused in paths and queries).
DO NOT PUT HERE: routes or pages (`api/`, `web/`), use cases or rules (the rooms' services), wire types
(`protocol/`), anything that knows a front end (which renderer, which routes: `server.py` decides).
"""
