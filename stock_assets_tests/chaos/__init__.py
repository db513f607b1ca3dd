"""The chaos suite: kill -9 of the broker, PostgreSQL, an ingest run and the streaming job, and
poison input, each followed by unattended recovery; counts produced vs stored vs dead-lettered.

Every scenario runs against PostgreSQL and Kafka instances of its own (ChaosServices: own state
dir, ports and processes; the downloads and builds are reused from the main cache), never the
shared ones. `make chaos` runs them all and writes bench/results/chaos.json.
"""
