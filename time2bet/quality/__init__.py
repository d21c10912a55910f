"""Data quality: Great Expectations suites for the raw tables and the feature mart, with Data Docs."""
