"""The videos room: a video's whole life, for every front end, split by what changes together.

PUT HERE: admission (service phase, model lifecycle, plan, rate; `admission.py`), the commands (create /
storyboard / remix / extend / edit / retry / delete / sharing, the request's inputs, enqueue; `commands.py`),
the reads and who may see a video (`queries.py`), a row as the API shows it (`objects.py`), the models as
this room sees them (`catalog.py`), and the one module that changes a video's status (`transitions.py`):
each transition is one transaction with its quota settlement and outbox event.
DO NOT PUT HERE: HTTP (api/), pages and how a form labels its choices (web/), running a job on the engine
(jobs/), torch or diffusers.
`api/`, `web/`, `cli/`, the assistants and `jobs/` call this room; it calls accounts/, likeness/,
lifecycle/, webhooks/, storage/ and db/.
"""
