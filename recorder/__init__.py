"""HDF5 recording and the analyst reader (built in the recorder issue)."""
