"""Outputs: formats (one table: what each format can do, its writer and its reader) · sinks
(table, json, jsonl, csv; parquet) · shards (DIR/part-N files) · destination (-o checked once:
where, which format) · resume (what a finished or killed run recorded) · pathset (those paths,
on disk) · report (counts → the summary line and the ExitStatus)."""
