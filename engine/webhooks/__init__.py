"""Outbound webhooks (issue 19, ADR 021): run events POSTed as signed CloudEvents to subscribed URLs.

- `service`: create, list, change and delete subscriptions; the signing secret is generated, shown once and
  sealed with the secrets machinery (`engine.secrets.envelope`);
- `signing`: the Standard Webhooks signature (`webhook-id`, `webhook-timestamp`, `webhook-signature`);
- `targets`: which URLs a webhook may target (no internal address unless `RAYWEAVE_WEBHOOK_ALLOW` lists it);
- `delivery`: one attempt, its classification (delivered, retry later, dead) and the backoff;
- `worker`: the background thread of the API server that turns stored events into deliveries and sends them.

Importing this package does no work.
"""
