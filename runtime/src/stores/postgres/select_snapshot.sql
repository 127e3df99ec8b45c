SELECT version, fingerprint, state FROM {snapshots} WHERE aggregate_type = $1 AND aggregate_id = $2
