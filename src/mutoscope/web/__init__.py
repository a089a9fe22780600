"""web/: the browser front end — server-rendered pages over the same services as the API, its sibling.

PUT HERE:
- Page routes (`routes.py`): the library (search, filters, bulk delete and export), create and edit,
  a video's page (lineage, remix/extend, retry, reuse, sharing), the feed and share links, the
  live-status fragment, usage, exports, the sunset banner. People pages (`accounts.py`): sign in with
  a password or an API key, sign-up, invites, and the settings pages (account, sessions, API keys,
  webhooks, usage). Each handler calls the same service that the matching /v1 route calls (`videos`,
  `video_queries`, `admission`, `accounts`, `exports`, `webhooks` of the one `Services` container, and
  `accounts/people.py`), so plans, quotas, consent and lifecycle rules apply to a click exactly as to an
  API call.
- The create and edit forms' choices (`choices.py`): the models a plan may pick, each size and length
  labelled, greyed out with the reason when the plan does not allow it.
- Cameo and character pages (`cameos.py`): recording a cameo with the camera, its checks, consent,
  grants, uses and takedowns, characters, and the `@` mention data of the create form, over
  the container's `cameos` and `likeness/`.
- The browser session (`session.py`): the signing secret kept in the data folder, the session
  cookie (a random session token whose hash is a `WebSession` row, and the CSRF token), the CSRF
  check of every POST form, and the resolution of a session to a `Principal`.
- Jinja2 templates (`templates/`), plain CSS and a little vanilla JS (`static/`); no build step,
  nothing loaded from another host.
- The HTML error page renderer that the server hands `http/errors.py` for non-/v1 paths when
  the client accepts HTML (Datasette's one handler, two formats).

DO NOT PUT HERE:
- Business rules (validation, quotas, consent, ownership): they live in the services; a page that
  needs a new rule adds it there so the API gets it too.
- `engine/` imports, torch, or anything that runs a model; the model list comes from the
  container's `ModelCatalog`.
- Imports of `api/` or its helpers: what both front ends need from HTTP is in `http/`.
- JSON endpoints for programs: that is /v1 in `api/`.
"""

from mutoscope.web.app import mount_web
from mutoscope.web.pages import render_error_page

__all__ = ["mount_web", "render_error_page"]
