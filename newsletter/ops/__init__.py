"""Operating it: logs (logs), Prometheus metrics (metrics), alerts to a webhook (alerts),
and the readiness and daily checks behind /readyz and `newsletter health` (health).

May import: newsletter.errors, newsletter.settings, newsletter/store/. The floors above
(delivery, jobs, the faces) report into it; `logs` imports the standard library only, so
the CLI can set up logging before anything heavy loads.
"""
