"""The jobs room: the job functions, their state machine, and the runners.

PUT HERE: `run_video_job` (the one function that owns a video's state from
queued to completed/failed), the `JobRunner` interface, the in-process runner
and the Celery runner. Both runners call the very same job function.
DO NOT PUT HERE: HTTP or wire types (api/, protocol/), pipeline internals
(engine/), encoding details (media/).
"""
