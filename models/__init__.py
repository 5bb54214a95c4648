"""seismo's model half: autoencoders, training, artifacts and evaluation.

Imported as ``seismo.models``; nothing here touches Kafka or Redis.
``nets`` holds the architectures, ``eval`` the metrics, reports and benchmark
protocols; the modules at the top train, calibrate, save and load a detector.
"""
