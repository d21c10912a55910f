"""Ingestion: turn football-data.co.uk CSV files into typed rows for the warehouse raw tables."""
