"""driftloop's compatibility layer for moto 5.2.5.

moto is the local AWS the project's tests and demo talk to. Its 5.2.5 release has gaps that the
current Rust SDK hits; this package closes them without forking moto:

* ``cbor``      - Smithy RPC v2 CBOR for CloudWatch (translated to/from moto's JSON protocol).
* ``faults``    - fault injection (throttling / 5xx for the next N calls of an operation).
* ``sagemaker`` - UpdateEndpoint, idempotent StartPipelineExecution, UpdateModelPackage merge
                  semantics, and smaller response fixes.
* ``events``    - TestEventPattern answered with moto's own matcher; ``account`` in delivered events.

``python -m driftloop_compat --host 127.0.0.1 --port 0`` serves moto with all of it loaded;
``--no-compat`` serves plain moto (used by the tests to prove every gap exists).
"""

MOTO_VERSION = "5.2.5"
