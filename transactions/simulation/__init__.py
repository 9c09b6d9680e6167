"""`manage.py simulate`: a simulated finance integration estate driven through the real ingest paths.

`estate` decides what happens (pure), `wire` encodes it for each channel (pure), `history` stores back-dated traffic
through the ingest decoders and service, `live` sends it over HTTP in real time.
"""
