"""Run one full sync in this process and print its figures as one JSON line.

The benchmark scripts start this module as a child process with the
environment of a real run (`STRIPE_API_KEY`, `STRIPE_API_BASE`,
`STRIPE_ACCOUNT_ID`, `STRIPE_RATE_LIMIT`, `STRIPE_ENDPOINT_RATE_LIMIT`,
`HALO_DATABASE_URL`), so the peak resident memory it reports belongs to
the sync alone. For experiments, `HALO_BENCH_WORKERS_PER_TYPE` and
`HALO_BENCH_WRITE_CONNECTIONS` override the loader's threads per object type
and its warehouse connections.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import sys
import time

from halo_stripe_pipeline.config import database_url
from halo_stripe_pipeline.ingest.loader import LoadOptions
from halo_stripe_pipeline.ingest.sync import run_full_sync
from halo_stripe_pipeline.stripe_client import stripe_api_from_env


def main() -> None:
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    # The SDK logs every response at INFO, which at 100 requests/s is noise.
    logging.getLogger("stripe").setLevel(logging.WARNING)
    api = stripe_api_from_env()
    started = time.monotonic()
    options = LoadOptions()
    if os.environ.get("HALO_BENCH_WORKERS_PER_TYPE"):
        options.workers_per_type = int(os.environ["HALO_BENCH_WORKERS_PER_TYPE"])
    if os.environ.get("HALO_BENCH_WRITE_CONNECTIONS"):
        options.write_connections = int(os.environ["HALO_BENCH_WRITE_CONNECTIONS"])
    report = run_full_sync(database_url(), api, options=options)
    seconds = time.monotonic() - started
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = {
        "account_id": report.account_id,
        "seconds": seconds,
        "objects": report.objects,
        "pages": report.pages,
        "requests": api.request_count,
        "retries": api.retry_count,
        "types": {
            entry.object_type: {
                "objects": entry.objects,
                "pages": entry.pages,
                "slices": entry.slices,
                "seconds": entry.seconds,
                "status": entry.status,
            }
            for entry in report.types
        },
        # Linux reports ru_maxrss in KiB.
        "peak_rss_mib": own.ru_maxrss / 1024,
        "children_peak_rss_mib": children.ru_maxrss / 1024,
        "cpu_seconds": own.ru_utime + own.ru_stime,
        "workers_per_type": options.workers_per_type,
        "write_connections": options.write_connections,
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
