"""Services for local use: the embedded Kafka broker and redis-server, and seismo commands
run as child processes.
"""
