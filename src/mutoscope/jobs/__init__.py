"""The jobs room: running a claimed job, and the runners that hand jobs to workers.

PUT HERE: `run_video_job` (generation.py) and a storyboard's shots (storyboard.py), what both render with
(render.py), the lease keeper, the `JobRunner` interface and lease reclaimer (base.py), the in-process
runner and the Celery runner (which gets its job context from the composition root). Both runners call
the very same job function. A video's status changes only through videos/transitions.py.
DO NOT PUT HERE: HTTP or wire types (api/, protocol/), pipeline internals
(engine/), encoding details (media/).
"""
