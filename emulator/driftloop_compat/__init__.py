"""driftloop's compatibility layer for moto 5.2.5.

moto is the local AWS the project's tests and demo talk to. Its 5.2.5 release has gaps that the
current Rust SDK hits; this package closes them without forking moto. ``server.build_app()`` loads
every module: the patches through their idempotent ``apply()`` (in this order), then the middlewares.

* ``cloudwatch`` patch: GetMetricData per namespace, metric math, ListMetrics deduplicated, aligned StartTime.
* ``sagemaker``  patch: UpdateEndpoint, capture config as AWS shows it, idempotent/paged pipeline runs, package merge.
* ``events``     patch: TestEventPattern answered with moto's own matcher; ``account`` in delivered events.
* ``lambda_async`` patch: functions run by ``cargo lambda watch``; async invokes (Event, EventBridge targets)
  retried, then recorded in the OnFailure destination with their errorType.
* ``emit``       patch: alarms start INSUFFICIENT_DATA, keep state on update; opt-in AWS service events.
* ``stepfunctions`` patch + middleware: the ASL interpreter on, failed Distributed Map items fail the
  run, the S3 ItemReader pages (and reads an empty prefix); Lambda Invoke routed to ``cargo lambda watch``.
* ``cbor``       middleware: Smithy RPC v2 CBOR for CloudWatch, translated to and from moto's JSON protocol.
* ``faults``     middleware: throttling / 5xx for the next N calls of an operation, in its protocol's errors.
* ``server``     the app: moto with all of the above, and admin routes (health, config, status, reset).
* ``wsgi_util``  helpers the middlewares share (bodies, responses, SigV4 scope); no AWS behaviour.

``python -m driftloop_compat --host 127.0.0.1 --port 0`` serves moto with all of it loaded;
``--no-compat`` serves plain moto (used by the tests to prove every gap exists).
"""

MOTO_VERSION = "5.2.5"
