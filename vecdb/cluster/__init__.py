"""vecdb past one machine (issue 17, in progress): shards of a database as
Ray actors behind the embedded API. So far: :mod:`.routing`, which shard
holds a point."""
