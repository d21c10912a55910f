"""The data source side: a deterministic sample site and a replay server of the football-data.co.uk layout."""
