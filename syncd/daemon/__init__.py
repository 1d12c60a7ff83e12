"""`syncd run`: the long-running process and its threads.

- `run`: `Daemon` (what runs) and `run_daemon` (serving until a signal);
- `writer`: the one writer thread every store write goes through;
- `worker`: the webhook worker applying accepted deliveries in order;
- `locks`: single-instance locks and signal handling.
"""
