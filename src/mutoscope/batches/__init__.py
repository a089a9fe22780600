"""The batches room: OpenAI's Batch API for `POST /v1/videos`.

PUT HERE: reading and bounding a batch's input file, admitting each line through `VideoCommands.create`
(`service.py`), and settling a batch from its rows: expiry, cancellation, the output and error files, its
final status and webhook (`finalizer.py`).
DO NOT PUT HERE: HTTP (api/routes/batches.py), running jobs (jobs/), a video's own rules (videos/).
A batch's lines are videos tagged with it (`videos.batch_id`) and refused lines are `batch_errors` rows, so
its progress is always read from the database, never held by a process. This room calls videos/, webhooks/,
storage/ and db/; api/, cli/, web/ and the runners' lease watch call it.
"""
