"""The reference for bench/ingest_throughput.py: the least a Django view does to ingest a receipt."""
