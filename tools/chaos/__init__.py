"""`make chaos`: a soak of the whole system under a steady mixed load while faults are injected
at random, then a check of the invariants that must survive them (see docs/operations.md, "Chaos soak").

load (the traffic and what it got back) · faults (the injector) · proxy (the cuttable Redis
link) · soak (the stack, the run, the settling) · evidence (store and broker reads) ·
invariants (pure checks) · report (JSON + table) · __main__ (the command line).
"""
