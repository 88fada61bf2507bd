// The HTTP side of `flagctl daemon`: OFREP, outcome reporting, /healthz, /readyz, /metrics.
