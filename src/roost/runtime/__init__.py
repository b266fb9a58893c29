"""The process runtime: listeners, TLS, workers and their supervisor, the event bus
between processes, and the limits shared across them. Only this package (and each
protocol's ``connection.py`` glue) touches sockets; ``store`` never imports it."""
