"""The webhooks room: endpoints users register, and signed, retried delivery of video events.

PUT HERE: endpoint records and secrets, the outbox of events, signing (Standard
Webhooks, the scheme OpenAI's SDK verifies with `client.webhooks.unwrap`), the
delivery loop with backoff.
DO NOT PUT HERE: HTTP routing (api/), job state (jobs/ calls `emit`).
Delivery is an outbox: `emit` writes a row next to the job's final state, and the
deliverer sends it, so a restart loses no event and a slow receiver never slows a job.
"""
