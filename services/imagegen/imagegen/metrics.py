"""Prometheus metrics of image jobs, served with the service's other metrics on METRICS_PORT."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

JOBS = Counter(
    "aisaas_image_jobs_total",
    "Image jobs ended, by outcome (succeeded, or the failure's error code) and model.",
    ["outcome", "model"],
)
JOB_SECONDS = Histogram(
    "aisaas_image_job_seconds",
    "Time from a job's acceptance to its end, by outcome.",
    ["outcome"],
    buckets=(0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600),
)
RUNNING = Gauge("aisaas_image_jobs_running", "Image jobs held by a worker of this process now.")
ORPHANS = Counter(
    "aisaas_image_orphans_total", "Stored files a failed job could not delete at once (the sweeper retries)."
)
