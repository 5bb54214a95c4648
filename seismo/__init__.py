"""seismo: streaming anomaly detection for sensor and IoT event streams on Kafka.

The package has two halves, each a folder of the repository mapped in here:

- :mod:`seismo.stream`: everything that runs against Kafka and Redis (the
  scorer, the registry, the retraining sidecar, incidents, the CLI);
- :mod:`seismo.models`: the autoencoders, their training, artifacts and
  evaluation, with no Kafka or Redis in sight.

``python -m seismo`` runs the command line (``seismo --help``).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("seismo")
except PackageNotFoundError:  # run from a source tree that is not installed
    __version__ = "0+unknown"
