"""The videos room: a video's whole life, for every front end.

PUT HERE: admission (service phase, model lifecycle, plan, rate, consent), create / remix / extend /
edit, lineage, enqueue (`service.py`), and the one module that changes a video's status
(`transitions.py`): each transition is one transaction with its quota settlement and outbox event.
DO NOT PUT HERE: HTTP (api/), pages (web/), running a job on the engine (jobs/), torch or diffusers.
`api/`, `web/`, `cli/`, the assistants and `jobs/` call this room; it calls accounts/, likeness/,
lifecycle/, webhooks/, storage/ and db/.
"""
