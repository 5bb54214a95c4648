"""The outside world of a running process: Kafka clients, the Redis statistics, Prometheus
metrics, ``/health``, and start-up checks against the topic.
"""
