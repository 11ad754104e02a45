"""Ingest: the receive chain from UDP datagrams to calibrated samples."""
