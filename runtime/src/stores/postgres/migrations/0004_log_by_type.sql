-- The log of some aggregate types (`read_all_of`: projections and the relay read only the
-- types they follow) is one ordered range of this index per type.
CREATE INDEX {events_log_by_type} ON {events} (aggregate_type, transaction_id, position);
