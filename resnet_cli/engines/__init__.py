"""Engines: sources → decoded batches → a runtime → records, in input order. local (threads in
this process) · ray_pool / ray_plan / ray_cluster / ray_worker (the same records on Ray)."""
