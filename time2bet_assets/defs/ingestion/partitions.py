"""Season files are partitioned by division x season; both dimensions grow as the source publishes more.

Keys look like ``E0|2019-20`` (Dagster orders dimensions by name: division, then season). Seasons are added
in chronological order so that a range such as ``E0|2010-11...E0|2019-20`` means what it says.
"""

import dagster as dg

division_partitions = dg.DynamicPartitionsDefinition(name="division")
season_partitions = dg.DynamicPartitionsDefinition(name="season")
season_file_partitions = dg.MultiPartitionsDefinition({"division": division_partitions, "season": season_partitions})


def division_and_season(key: str) -> tuple[str, str]:
    """``'E0|2019-20'`` (or a MultiPartitionKey) -> ``('E0', '2019-20')``."""
    if isinstance(key, dg.MultiPartitionKey):
        dims = key.keys_by_dimension
        return dims["division"], dims["season"]
    division, season = str(key).split("|")
    return division, season


def partition_key(division: str, season: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"division": division, "season": season})
