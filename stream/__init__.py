"""seismo's streaming half: everything that runs against Kafka and Redis.

Imported as ``seismo.stream``. One subpackage per concern:

- ``scoring``: the scorer's batch loop and the pure rules it applies;
- ``io``: Kafka clients, Redis statistics, metrics and ``/health``;
- ``config``: the settings of every command;
- ``registry``: model versions, verification and hot swap;
- ``retrain``: the retraining sidecar;
- ``incidents``: alerts to incidents to pages;
- ``offline``: train, evaluate and produce from files;
- ``sim`` and ``demo``: the simulated plant and ``seismo demo``;
- ``bench``: benchmarks that write their own reports;
- ``local``: the embedded broker and Redis for local use;
- ``cli``: the command line, parsing only.
"""
