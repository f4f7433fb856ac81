"""Graph passes, one per file. `kiln/pipeline.py` says which run and in what order."""
