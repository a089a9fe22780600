"""The webhooks room: endpoints users register, and signed, retried delivery of video events.

PUT HERE: endpoint records and their sealed secrets, the outbox of events, signing
(Standard Webhooks, the scheme OpenAI's SDK verifies with `client.webhooks.unwrap`),
the concurrent deliverer with per-event and per-endpoint backoff, and `WebhookService`: the
endpoint use cases (create, list, update, rotate, delete, deliveries, test) that `/v1` and the
settings pages both call.
DO NOT PUT HERE: HTTP routing (api/, web/), job state (jobs/ calls `emit`), vetting URLs or
connecting to them (`mutoscope.outbound`), the sealing key (`mutoscope.sealing`).
Delivery is an outbox: `emit` writes a row next to the job's final state, and the
deliverer sends it, so a restart loses no event and a slow receiver never slows a job
or another endpoint's delivery.
"""
