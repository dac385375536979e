"""rfenv shim: the HTTP server that rfenv injects into function-based images.

It serves the methods of env.py (an ``Actor`` class or module-level functions) over
HTTP/1.1; the wire protocol is ARCHITECTURE.md's "Wire protocol between rfenv and the
shim", choices beyond it are in shim/README.md.  Standard library only, Python 3.8+.
It runs as the container's PID 1 through the launcher /rfenv/shim.py (shim/server.py).

Modules, one concept each:
  config    environment variables, limits, logging
  wire      status lines, error bodies, exception reports
  results   converting a method's return value to JSON
  methods   finding an env.py's methods and describing them
  state     the process-wide state: readiness, stats, capacity, health and /stats bodies
  pool      worker threads for sync methods
  framing   parsing an HTTP/1.1 request head
  conn      the per-connection protocol: buffering, timeouts, responses
  calls     routing and /call: admission, deadlines, replies
  loader    secrets, importing env.py, /reload
  restart   the overdue restart: drain, record, exit 75
  main      startup and shutdown
"""

# The wire-protocol version, defined here only: the Go side (shim/embed.go) reads it from this
# file and labels images with it (rfenv.shim.version).
SHIM_VERSION = "2"
